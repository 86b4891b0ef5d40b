import type { OsProfile } from './profile.js';

/** Debian 12+ and Ubuntu 22.04+. */
export const debian: OsProfile = {
  family: 'debian',
  dovecot: '2.3',
  packageManager: 'apt',
  firewall: 'nftables',
  banaction: 'nftables-multiport',
  selinux: false,
  paths: {
    postfix: '/etc/postfix',
    postfixSpool: '/var/spool/postfix',
    eximDir: '/etc/exim4',
    eximConfig: '/etc/exim4/exim4.conf',
    dovecot: '/etc/dovecot',
    opendkimConf: '/etc/opendkim.conf',
    opendkimDir: '/etc/opendkim',
    dkimKeys: '/etc/dkimkeys',
    tls: '/etc/mailops/tls',
    vmail: '/var/vmail',
    state: '/var/lib/mailops',
    caBundle: '/etc/ssl/certs/ca-certificates.crt',
    postsrsdDefaults: '/etc/default/postsrsd',
    nftables: '/etc/nftables.conf',
    rspamd: '/etc/rspamd',
    sieve: '/var/lib/dovecot/sieve',
  },
  services: { postfix: 'postfix', exim: 'exim4', dovecot: 'dovecot', opendkim: 'opendkim', firewall: 'nftables', rspamd: 'rspamd', redis: 'redis-server', fail2ban: 'fail2ban' },
  users: { postfix: 'postfix', exim: 'Debian-exim', eximGroup: 'Debian-exim', dovecot: 'dovecot', opendkim: 'opendkim', vmail: 'vmail', vmailUid: 5000 },
};
