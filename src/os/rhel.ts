import type { OsProfile } from './profile.js';

/**
 * CentOS Stream, AlmaLinux, Rocky Linux and RHEL 8+ (Exim and OpenDKIM from EPEL; rspamd from rspamd's own
 * repository, rspamd.com/rpm-stable, which must be configured on the host; Redis and Pigeonhole from AppStream).
 */
export const rhel: OsProfile = {
  family: 'rhel',
  dovecot: '2.3',
  packageManager: 'dnf',
  firewall: 'firewalld',
  banaction: 'firewallcmd-rich-rules',
  selinux: true,
  paths: {
    postfix: '/etc/postfix',
    postfixSpool: '/var/spool/postfix',
    eximDir: '/etc/exim',
    eximConfig: '/etc/exim/exim.conf',
    dovecot: '/etc/dovecot',
    opendkimConf: '/etc/opendkim.conf',
    opendkimDir: '/etc/opendkim',
    dkimKeys: '/etc/opendkim/keys',
    tls: '/etc/mailops/tls',
    vmail: '/var/vmail',
    state: '/var/lib/mailops',
    caBundle: '/etc/pki/tls/certs/ca-bundle.crt',
    postsrsdDefaults: '/etc/sysconfig/postsrsd',
    nftables: '/etc/sysconfig/nftables.conf',
    rspamd: '/etc/rspamd',
    sieve: '/var/lib/dovecot/sieve',
  },
  services: { postfix: 'postfix', exim: 'exim', dovecot: 'dovecot', opendkim: 'opendkim', firewall: 'firewalld', rspamd: 'rspamd', redis: 'redis', fail2ban: 'fail2ban' },
  users: { postfix: 'postfix', exim: 'exim', eximGroup: 'exim', dovecot: 'dovecot', opendkim: 'opendkim', vmail: 'vmail', vmailUid: 5000 },
};
