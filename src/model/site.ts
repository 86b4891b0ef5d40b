/** The normalized, validated site: what the playbook asks for, with defaults applied. Pure data. */

export type OsFamily = 'debian' | 'rhel';
export type Mta = 'postfix' | 'exim';
export type TlsMode = 'self-signed' | 'files' | 'acme';
export type DkimKeyType = 'rsa-2048' | 'rsa-4096' | 'ed25519';
export type DmarcPolicy = 'none' | 'quarantine' | 'reject';

/** Where a secret comes from. The value itself is only read when it is needed. */
export type SecretRef = { kind: 'env'; name: string } | { kind: 'file'; path: string };

export interface SshTarget {
  address: string;
  port: number;
  user: string;
  identity?: string;
  hostKey?: string;
}

export interface Host {
  name: string;
  ssh: SshTarget;
  hostname: string;
  ipv4: string;
  ipv6?: string;
  os: OsFamily | 'auto';
  /** mailbox: stores mailboxes; backup-mx: accepts and queues mail for the mailbox hosts. */
  role: HostRole;
}

export type HostRole = 'mailbox' | 'backup-mx';

export interface Tls {
  mode: TlsMode;
  /** Certificate and key paths on the host (mode files; derived for the other modes). */
  cert?: string;
  key?: string;
  /** Contact address for the ACME account (mode acme). */
  email?: string;
  /** ACME directory URL (mode acme); Let's Encrypt when absent. */
  acmeServer?: string;
}

export interface Stack {
  mta: Mta;
  imap: boolean;
  pop3: boolean;
  tls: Tls;
  /** Bytes. */
  messageSizeLimit: number;
  /** Manage the inbound firewall. */
  firewall: boolean;
  /** Score inbound mail with rspamd. */
  antispam: boolean;
  /** DNS blocklist zones checked for clients on port 25. */
  dnsbl: string[];
  /** Ban addresses after repeated failed logins; absent when turned off. */
  authBan?: AuthBan;
  /** Dovecot replication between the two mailbox hosts. */
  replication: boolean;
  /** Outbound smarthost. */
  relay?: Relay;
  /** Client autoconfiguration over HTTPS. */
  autoconfig: boolean;
  mtaSts: 'none' | 'testing' | 'enforce';
}

export interface AuthBan {
  attempts: number;
  /** Seconds. */
  within: number;
  /** Seconds. */
  ban: number;
}

export interface Relay {
  host: string;
  port: 587 | 465 | 2525 | 25;
  username: string;
  password: SecretRef;
}

export interface DnsSettings {
  ttl: number;
  /** Host names, without the trailing dot. */
  nameservers: string[];
  /** Addresses of name servers given in the playbook (glue for names inside a zone). */
  nameserverAddresses: Record<string, { ipv4?: string; ipv6?: string }>;
  /** RNAME form of the hostmaster address is derived by the zone writer. */
  hostmaster: string;
  /** RFC 2136 updates signed with TSIG. */
  update?: DnsUpdate;
  /** TLS reporting address (RFC 8460), published as _smtp._tls TXT. */
  tlsrpt?: string;
}

/** Where and how zones are pushed. The key is read only when it is used. */
export interface DnsUpdate {
  /** "HOST" or "HOST:PORT" ("[v6]:PORT"). */
  server: string;
  key: SecretRef;
}

export interface Dkim {
  selector: string;
  key: DkimKeyType;
  /** Seconds a replaced key stays published after it stopped signing. */
  grace: number;
}

export interface Spf {
  policy: string;
  include: string[];
}

export interface Dmarc {
  policy: DmarcPolicy;
  rua?: string;
  ruf?: string;
  pct?: number;
}

export interface Mailbox {
  local: string;
  address: string;
  /** Exactly one of hash / secret is set. */
  passwordHash?: string;
  passwordSecret?: SecretRef;
  /** Dovecot quota string such as "2G", and its size in bytes. */
  quota?: string;
  quotaBytes?: number;
  /** Full addresses this mailbox may send as, besides its own. */
  sendAs: string[];
  /** May submit mail. */
  send: boolean;
  /** At most `count` submitted messages per hour or day. */
  sendLimit?: { count: number; per: 'hour' | 'day' };
  /** false: login and delivery refused; the mail stays on disk. */
  enabled: boolean;
}

export interface Alias {
  local: string;
  address: string;
  /** Full addresses, local or external. */
  targets: string[];
}

export interface Domain {
  name: string;
  dkim?: Dkim;
  spf: Spf;
  dmarc?: Dmarc;
  mailboxes: Mailbox[];
  aliases: Alias[];
  /** Full address receiving unknown local parts. */
  catchAll?: string;
}

export interface Site {
  site: string;
  /** Absolute path of the playbook it was loaded from. */
  file: string;
  hosts: Host[];
  stack: Stack;
  dns: DnsSettings;
  domains: Domain[];
}
