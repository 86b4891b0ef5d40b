/**
 * The data every template sees for one host: the site model flattened into the lists the configs need.
 * Pure: credentials and DKIM public keys are passed in.
 */
import type { Domain, Host, Site } from '../model/site.js';
import type { OsProfile } from '../os/profile.js';
import { lifecycleText, planDkim } from '../plan/dkim.js';
import { certificateNames, clientHost, servesWeb } from './names.js';
import { appleProfile, autodiscoverJson, autodiscoverXml, mtaStsPolicy, thunderbirdConfig } from '../clients/autoconfig.js';
import type { DkimPlan, DkimStatus } from '../plan/dkim.js';
import { RELAY_PASSWORD } from './credentials.js';
import { authBanView, mailPolicy } from './limits.js';
import type { AuthBanView, SendLimitView } from './limits.js';
import { replicationView } from './replication.js';
import type { ReplicationView } from './replication.js';

export interface MailboxView {
  local: string;
  domain: string;
  address: string;
  /** Dovecot password hash (already resolved from password_hash or the secret). */
  hash: string;
  quota?: string;
  quotaBytes?: number;
  /**
   * How far the last message may take the mailbox past its quota: 10% of it, Dovecot 2.3's default
   * (quota_grace = 10%). Dovecot 2.4 takes only a size (its default, 10M, would let a 1M mailbox hold 11M).
   */
  quotaGraceBytes?: number;
  home: string;
  maildir: string;
  sendAs: string[];
}

export interface AliasView {
  local: string;
  domain: string;
  address: string;
  targets: string[];
}

export interface DkimView {
  domain: string;
  selector: string;
  keyType: 'rsa' | 'ed25519';
  bits: number;
  /** Private key path on the host (generated there, never leaves it). */
  keyFile: string;
  /** DNS name: <selector>._domainkey.<domain> */
  record: string;
  status: DkimStatus;
  /** Unix seconds: when a retired key stopped signing. */
  since?: number;
}

/** The smarthost as the MTAs need it (stack.relay with its password read). */
export interface RelayView {
  host: string;
  port: number;
  username: string;
  /** Plaintext: rendered only into files marked secret. */
  password: string;
  /** 465: TLS from the first byte (Postfix smtp_tls_wrappermode, Exim protocol = smtps); else STARTTLS, required. */
  wrapper: boolean;
  /** Postfix's next hop, [host]:port (no MX lookup), also the key of its password map. */
  nexthop: string;
}

/** What a backup MX needs: the mailbox hosts it forwards to, and every recipient it may accept. */
export interface BackupMxView {
  /** Postfix next hops, "[mx1.example.com]:25, [mx2.example.com]:25": by name, never by MX (no loop back to itself). */
  nexthops: string;
  /** Host names of the mailbox hosts, in the playbook's order. */
  targets: string[];
  /** Every address a mailbox host accepts (mailboxes, aliases), and "@domain" for a domain with a catch-all. */
  recipients: string[];
}

export interface TemplateContext {
  site: { name: string };
  host: Host;
  /** Every host of the site (for multi-MX setups). */
  hosts: Host[];
  os: OsProfile;
  stack: Site['stack'];
  /** `names`: what the certificate covers; `san` its subjectAltName, `sanSorted` the same sorted (for comparing). */
  tls: { mode: string; cert: string; key: string; email?: string; acmeServer?: string; names: string[]; san: string; sanSorted: string };
  domains: Array<Domain & { mailboxViews: MailboxView[]; aliasViews: AliasView[] }>;
  domainNames: string[];
  mailboxes: MailboxView[];
  aliases: AliasView[];
  catchAlls: Array<{ domain: string; target: string }>;
  /**
   * Where the host's own mail goes (cron's mail to root, the MTA's notices to postmaster): the first
   * domain's postmaster alias or mailbox, else any domain's, else the first mailbox or alias.
   */
  postmaster?: string;
  /** address → SASL logins allowed to use it as envelope sender (own address + send_as). */
  senderLogins: Array<{ address: string; logins: string[] }>;
  /** Logins that may not submit (send: false). */
  sendBlocked: string[];
  /** Logins with a send_limit. */
  sendLimits: SendLimitView[];
  /** Addresses refused at RCPT: disabled mailboxes and aliases that reach only those. */
  refusedRecipients: string[];
  /** Disabled mailboxes: every login refused. */
  disabledLogins: string[];
  /** Brute-force bans (stack.auth_ban); absent when turned off. */
  authBan?: AuthBanView;
  /**
   * The SRS domain (the first domain): the envelope sender of forwarded mail is rewritten into it. SRS is
   * always ready, not only while some alias forwards: bounces of mail forwarded earlier still come back,
   * and adding or removing a forward changes no daemon's configuration.
   */
  srsDomain: string;
  /** The keys this host signs with. */
  dkim: DkimView[];
  /** Every key the host keeps (signing, pending publication, retired but still published). */
  dkimKeys: DkimView[];
  /** Keys to delete (retired past their grace, or pending keys no longer wanted). */
  dkimRemove: DkimView[];
  /** The host's DKIM lifecycle file. */
  dkimLifecycle: string;
  /** What the DKIM lifecycle does in this run, in words. */
  dkimNotes: string[];
  /** Per domain, the selectors this host signs with. */
  dkimDomains: Array<{ domain: string; selectors: string[] }>;
  vmail: { user: string; group: string; uid: number; gid: number; home: string };
  /** The outbound smarthost, when the playbook has one. */
  relay?: RelayView;
  /** The host's role: mailbox (stores mail) or backup-mx (queues and forwards it). */
  role: Host['role'];
  /** role backup-mx: what it forwards to and whom it accepts. */
  backupMx?: BackupMxView;
  /** stack.replication, on a mailbox host: the other mailbox host and the shared doveadm password. */
  replication?: ReplicationView;
  /** The folders Dovecot makes for every user besides INBOX, each with its special use (RFC 6154). */
  specialFolders: Array<{ name: string; use: string }>;
  features: Record<string, string | boolean>;
  /** What the client host serves over HTTPS: per domain, autoconfiguration and the MTA-STS policy; per address, an Apple profile. */
  web: {
    domains: Array<{ name: string; autoconfig?: string; autodiscover?: string; autodiscoverJson?: string; mtaSts?: string }>;
    profiles: Array<{ address: string; local: string; domain: string; profile: string }>;
  };
  /** Inbound TCP ports of the host: SSH and those of the active components (filled by the engine). */
  ports: number[];
}

export type Credentials = ReadonlyMap<string, string>;

export function tlsPaths(site: Site, host: Host, os: OsProfile): { cert: string; key: string } {
  const t = site.stack.tls;
  if (t.mode === 'files') return { cert: t.cert!, key: t.key! };
  if (t.mode === 'acme') return { cert: `/etc/letsencrypt/live/${host.hostname}/fullchain.pem`, key: `/etc/letsencrypt/live/${host.hostname}/privkey.pem` };
  return { cert: `${os.paths.tls}/${host.hostname}.crt`, key: `${os.paths.tls}/${host.hostname}.key` };
}


/** The DKIM keys of a host before anything is known of it: a first key per domain and algorithm, signing. */
export function initialDkim(site: Site, host: Host): DkimPlan {
  return planDkim({ site, host, held: [], taken: new Set(), served: () => false, now: 0 });
}

export function dkimViews(keys: DkimPlan['keys'], os: OsProfile): DkimView[] {
  return keys.map((k) => ({
    domain: k.domain,
    selector: k.selector,
    keyType: k.algorithm,
    bits: k.bits,
    keyFile: `${os.paths.dkimKeys}/${k.domain}.${k.selector}.key`,
    record: `${k.selector}._domainkey.${k.domain}`,
    status: k.status,
    ...(k.since !== undefined ? { since: k.since } : {}),
  }));
}

/** Per domain, the selectors a host signs with (Exim signs once per selector of the list). */
export function dkimDomains(views: DkimView[]): Array<{ domain: string; selectors: string[] }> {
  const out = new Map<string, string[]>();
  for (const v of views) out.set(v.domain, [...(out.get(v.domain) ?? []), v.selector]);
  return [...out.entries()].map(([domain, selectors]) => ({ domain, selectors }));
}

export function relayView(r: NonNullable<Site['stack']['relay']>, credentials: Credentials): RelayView {
  const password = credentials.get(RELAY_PASSWORD);
  if (password === undefined) throw new Error('internal: no credential resolved for the relay');
  const host = r.host.replace(/\.$/, '');
  const bracketed = host.includes(':') ? `[ipv6:${host}]` : `[${host}]`;
  return { host, port: r.port, username: r.username, password, wrapper: r.port === 465, nexthop: `${bracketed}:${r.port}` };
}

/** The recipients a backup MX accepts and the mailbox hosts it forwards them to. Pure. */
export function backupMxView(site: Site): BackupMxView {
  const targets = site.hosts.filter((h) => h.role !== 'backup-mx').map((h) => h.hostname);
  // What the mailbox hosts refuse (disabled mailboxes, aliases that reach only those) the backup refuses
  // too, at RCPT: accepted here, it would bounce when forwarded.
  const policy = mailPolicy(site.domains);
  const refused = new Set(policy.refused);
  const recipients = new Set<string>();
  for (const d of site.domains) {
    for (const m of d.mailboxes) if (!refused.has(m.address)) recipients.add(m.address.toLowerCase());
    for (const a of d.aliases) if (!refused.has(a.address)) recipients.add(a.address.toLowerCase());
  }
  for (const c of policy.catchAlls) recipients.add(`@${c.domain.toLowerCase()}`);
  return { nexthops: targets.map((t) => `[${t}]:25`).join(', '), targets, recipients: [...recipients].sort() };
}

/** The special-use folders Dovecot makes (auto = subscribe) for every user, as clients expect them. */
const SPECIAL_FOLDERS = [
  { name: 'Drafts', use: '\\Drafts' },
  { name: 'Junk', use: '\\Junk' },
  { name: 'Sent', use: '\\Sent' },
  { name: 'Trash', use: '\\Trash' },
];

/** `dkim`: the host's DKIM lifecycle (planned from its facts); the keys a fresh host would make when absent. */
/** `recordedTls`: the certificate fingerprints the site state recorded, by host name (replication pins the other host's). */
/** `recordedDovecot`: the Dovecot generation the site state recorded of each host (replication looks at the other's). */
export function buildContext(
  site: Site,
  host: Host,
  os: OsProfile,
  credentials: Credentials,
  dkimPlan: DkimPlan = initialDkim(site, host),
  recordedTls: Readonly<Record<string, string>> = {},
  recordedDovecot: Readonly<Record<string, string>> = {},
): TemplateContext {
  const vmail = { user: os.users.vmail, group: os.users.vmail, uid: os.users.vmailUid, gid: os.users.vmailUid, home: os.paths.vmail };
  const policy = mailPolicy(site.domains);
  const domains = site.domains.map((d) => {
    const mailboxViews: MailboxView[] = d.mailboxes.map((m) => {
      const hash = credentials.get(m.address);
      if (hash === undefined) throw new Error(`internal: no credential resolved for ${m.address}`);
      const home = `${vmail.home}/${d.name}/${m.local}`;
      return {
        local: m.local,
        domain: d.name,
        address: m.address,
        hash,
        ...(m.quota !== undefined ? { quota: m.quota, quotaBytes: m.quotaBytes!, quotaGraceBytes: Math.floor(m.quotaBytes! / 10) } : {}),
        home,
        maildir: `${home}/Maildir`,
        sendAs: m.sendAs,
      };
    });
    // Aliases deliver to the mailboxes that still take mail; one that reaches none is refused instead.
    const aliasViews: AliasView[] = d.aliases.flatMap((a) => {
      const targets = policy.aliasTargets.get(a.address);
      return targets ? [{ local: a.local, domain: d.name, address: a.address, targets }] : [];
    });
    return { ...d, mailboxViews, aliasViews };
  });
  const mailboxes = domains.flatMap((d) => d.mailboxViews);
  const owners = new Map<string, Set<string>>();
  for (const m of mailboxes) {
    for (const a of [m.address, ...m.sendAs]) {
      const set = owners.get(a) ?? new Set<string>();
      set.add(m.address);
      owners.set(a, set);
    }
  }
  const certNames = certificateNames(site, host);
  const dkimKeys = dkimViews(dkimPlan.keys, os);
  const dkim = dkimKeys.filter((k) => k.status === 'signing');
  // Only addresses that take mail: not a disabled mailbox, not an alias refused with it.
  const refused = new Set(policy.refused);
  const addresses = domains.flatMap((d) => [...d.mailboxViews, ...d.aliasViews].map((x) => x.address)).filter((a) => !refused.has(a));
  const postmaster = addresses.find((a) => a.startsWith('postmaster@')) ?? addresses[0];
  const replication = replicationView(site, host, credentials, os, SPECIAL_FOLDERS.map((f) => f.name), recordedTls, recordedDovecot);
  return {
    site: { name: site.site },
    host,
    hosts: site.hosts,
    os,
    stack: site.stack,
    tls: {
      mode: site.stack.tls.mode,
      ...tlsPaths(site, host, os),
      names: certNames,
      san: certNames.map((n) => `DNS:${n}`).join(','),
      sanSorted: certNames.map((n) => `DNS:${n}`).sort().join(','),
      ...(site.stack.tls.email ? { email: site.stack.tls.email } : {}),
      ...(site.stack.tls.acmeServer ? { acmeServer: site.stack.tls.acmeServer } : {}),
    },
    domains,
    domainNames: domains.map((d) => d.name),
    mailboxes,
    aliases: domains.flatMap((d) => d.aliasViews),
    ...(postmaster !== undefined ? { postmaster } : {}),
    catchAlls: policy.catchAlls,
    senderLogins: [...owners.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([address, s]) => ({ address, logins: [...s].sort() })),
    sendBlocked: policy.sendBlocked,
    sendLimits: policy.sendLimits,
    refusedRecipients: policy.refused,
    disabledLogins: policy.disabledLogins,
    ...(site.stack.authBan ? { authBan: authBanView(site.stack.authBan) } : {}),
    srsDomain: domains[0]?.name ?? host.hostname,
    dkim,
    dkimKeys,
    dkimRemove: dkimViews(dkimPlan.remove, os),
    dkimLifecycle: lifecycleText(dkimPlan.keys),
    dkimNotes: dkimPlan.notes,
    dkimDomains: dkimDomains(dkim),
    vmail,
    web: webOf(site, host),
    ...(site.stack.relay ? { relay: relayView(site.stack.relay, credentials) } : {}),
    role: host.role,
    ...(host.role === 'backup-mx' ? { backupMx: backupMxView(site) } : {}),
    ...(replication ? { replication } : {}),
    specialFolders: SPECIAL_FOLDERS,
    features: {
      os: os.family,
      // The Dovecot of the host's release: 2.4 reads another configuration syntax.
      dovecot: os.dovecot,
      mta: site.stack.mta,
      imap: site.stack.imap,
      pop3: site.stack.pop3,
      dkim: dkim.length > 0,
      // Keys are kept (pending, retired) or deleted even when none signs.
      dkim_keys: dkimKeys.length > 0 || dkimPlan.remove.length > 0,
      // OpenDKIM 2.11 signs with one algorithm per process: RSA and Ed25519 keys need a process each.
      dkim_rsa: dkim.some((k) => k.keyType === 'rsa'),
      dkim_ed25519: dkim.some((k) => k.keyType === 'ed25519'),
      tls: site.stack.tls.mode,
      firewall: os.firewall,
      firewall_on: site.stack.firewall,
      selinux: os.selinux,
      // A backup MX has no logins: nothing to ban, nothing to limit.
      auth_ban: site.stack.authBan !== undefined && host.role === 'mailbox',
      send_limits: policy.sendLimits.length > 0 && host.role === 'mailbox',
      relay: site.stack.relay !== undefined,
      role: host.role,
      replication: replication !== undefined,
      replication_pin: replication?.peerFingerprint !== undefined,
      replication_follower: replication?.follower ?? false,
      replication_push: replication?.push ?? false,
      replication_ready: replication?.ready ?? false,
      web: servesWeb(site) && clientHost(site).name === host.name,
      autoconfig: site.stack.autoconfig,
      mta_sts: site.stack.mtaSts !== 'none',
      // Inbound mail scored by rspamd (spam, and the SPF, DKIM and DMARC of the sender); junk filed by Sieve.
      antispam: site.stack.antispam,
      // DNS blocklists asked about the clients of port 25.
      dnsbl: site.stack.dnsbl.length > 0,
    },
    ports: [],
  };
}

/** nginx's single-quoted string: the text on one line, quotes and backslashes escaped. */
const nginxString = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\r?\n/g, '')}'`;

function webOf(site: Site, host: Host): TemplateContext['web'] {
  if (!servesWeb(site) || clientHost(site).name !== host.name) return { domains: [], profiles: [] };
  const sts = mtaStsPolicy(site);
  const on = site.stack.autoconfig;
  return {
    domains: site.domains.map((d) => ({
      name: d.name,
      ...(on ? { autoconfig: thunderbirdConfig(site, d), autodiscover: nginxString(autodiscoverXml(site, d)), autodiscoverJson: nginxString(autodiscoverJson(d)) } : {}),
      ...(sts ? { mtaSts: sts.text } : {}),
    })),
    profiles: on ? site.domains.flatMap((d) => d.mailboxes.map((m) => ({ address: m.address, local: m.local, domain: d.name, profile: appleProfile(site, d, m) }))) : [],
  };
}
