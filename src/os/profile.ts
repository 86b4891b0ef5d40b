/** What differs between OS families: paths, service names, system users, package and firewall tools. */
import type { OsFamily } from '../model/site.js';

export interface OsProfile {
  family: OsFamily;
  packageManager: 'apt' | 'dnf';
  firewall: 'nftables' | 'firewalld';
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
    nftables: string;
    /** rspamd's configuration (its local.d/ and override.d/ hold what mailops sets). */
    rspamd: string;
    /** The global Sieve scripts Dovecot runs before every delivery (junk filing); the vmail user compiles them there. */
    sieve: string;
  };
  services: { postfix: string; exim: string; dovecot: string; opendkim: string; firewall: string; rspamd: string; redis: string };
  users: { postfix: string; exim: string; eximGroup: string; dovecot: string; opendkim: string; vmail: string; vmailUid: number };
}
