/** What differs between OS families: paths, service names, system users, package and firewall tools. */
import type { OsFamily } from '../model/site.js';

/** The Dovecot a release's packages bring: 2.4 reads a configuration of another syntax (and has no replicator). */
export type DovecotGeneration = '2.3' | '2.4';

export interface OsProfile {
  family: OsFamily;
  /** The Dovecot of the host's release (src/os/index.ts, dovecotOf): its configuration is rendered for that one. */
  dovecot: DovecotGeneration;
  packageManager: 'apt' | 'dnf';
  firewall: 'nftables' | 'firewalld';
  /** fail2ban's ban action for this firewall (its own table / rich rules: a firewall re-apply leaves them alone). */
  banaction: 'nftables-multiport' | 'firewallcmd-rich-rules';
  selinux: boolean;
  paths: {
    postfix: string;
    postfixSpool: string;
    eximDir: string;
    eximConfig: string;
    dovecot: string;
    opendkimConf: string;
    opendkimDir: string;
    dkimKeys: string;
    tls: string;
    vmail: string;
    state: string;
    caBundle: string;
    /** postsrsd's settings, read as shell variables by its launcher. */
    postsrsdDefaults: string;
    nftables: string;
    /** rspamd's configuration (its local.d/ and override.d/ hold what mailops sets). */
    rspamd: string;
    /** The global Sieve scripts Dovecot runs before every delivery (junk filing); the vmail user compiles them there. */
    sieve: string;
  };
  services: { postfix: string; exim: string; dovecot: string; opendkim: string; firewall: string; rspamd: string; redis: string; fail2ban: string };
  users: { postfix: string; exim: string; eximGroup: string; dovecot: string; opendkim: string; vmail: string; vmailUid: number };
}
