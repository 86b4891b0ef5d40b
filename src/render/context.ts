/**
 * The data every template sees for one host: the site model flattened into the lists the configs need.
 * Pure: credentials and DKIM public keys are passed in.
 */
import type { Domain, Host, Site } from '../model/site.js';
import type { OsProfile } from '../os/profile.js';
import { hostKeys } from './dkim.js';

export interface MailboxView {
  local: string;
  domain: string;
  address: string;
  /** Dovecot password hash (already resolved from password_hash or the secret). */
  hash: string;
  quota?: string;
  quotaBytes?: number;
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
}

export interface TemplateContext {
  site: { name: string };
  host: Host;
  /** Every host of the site (for multi-MX setups). */
  hosts: Host[];
  os: OsProfile;
  stack: Site['stack'];
  tls: { mode: string; cert: string; key: string; email?: string; acmeServer?: string };
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
  dkim: DkimView[];
  /** Per domain, the selectors this host signs with. */
  dkimDomains: Array<{ domain: string; selectors: string[] }>;
  vmail: { user: string; group: string; uid: number; gid: number; home: string };
  features: Record<string, string | boolean>;
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

export { hostSelector } from './dkim.js';

export function dkimViews(site: Site, host: Host, os: OsProfile): DkimView[] {
  return hostKeys(site, host).map((k) => ({
    domain: k.domain,
    selector: k.selector,
    keyType: k.keyType,
    bits: k.bits,
    keyFile: `${os.paths.dkimKeys}/${k.domain}.${k.selector}.key`,
    record: k.record,
  }));
}

/** Per domain, the selectors a host signs with (Exim signs once per selector of the list). */
export function dkimDomains(views: DkimView[]): Array<{ domain: string; selectors: string[] }> {
  const out = new Map<string, string[]>();
  for (const v of views) out.set(v.domain, [...(out.get(v.domain) ?? []), v.selector]);
  return [...out.entries()].map(([domain, selectors]) => ({ domain, selectors }));
}

export function buildContext(site: Site, host: Host, os: OsProfile, credentials: Credentials): TemplateContext {
  const vmail = { user: os.users.vmail, group: os.users.vmail, uid: os.users.vmailUid, gid: os.users.vmailUid, home: os.paths.vmail };
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
        ...(m.quota !== undefined ? { quota: m.quota, quotaBytes: m.quotaBytes! } : {}),
        home,
        maildir: `${home}/Maildir`,
        sendAs: m.sendAs,
      };
    });
    const aliasViews: AliasView[] = d.aliases.map((a) => ({ local: a.local, domain: d.name, address: a.address, targets: a.targets }));
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
  const dkim = dkimViews(site, host, os);
  const addresses = domains.flatMap((d) => [...d.mailboxViews, ...d.aliasViews].map((x) => x.address));
  const postmaster = addresses.find((a) => a.startsWith('postmaster@')) ?? addresses[0];
  return {
    site: { name: site.site },
    host,
    hosts: site.hosts,
    os,
    stack: site.stack,
    tls: {
      mode: site.stack.tls.mode,
      ...tlsPaths(site, host, os),
      ...(site.stack.tls.email ? { email: site.stack.tls.email } : {}),
      ...(site.stack.tls.acmeServer ? { acmeServer: site.stack.tls.acmeServer } : {}),
    },
    domains,
    domainNames: domains.map((d) => d.name),
    mailboxes,
    aliases: domains.flatMap((d) => d.aliasViews),
    ...(postmaster !== undefined ? { postmaster } : {}),
    catchAlls: site.domains.filter((d) => d.catchAll).map((d) => ({ domain: d.name, target: d.catchAll! })),
    senderLogins: [...owners.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([address, s]) => ({ address, logins: [...s].sort() })),
    dkim,
    dkimDomains: dkimDomains(dkim),
    vmail,
    features: {
      os: os.family,
      mta: site.stack.mta,
      imap: site.stack.imap,
      pop3: site.stack.pop3,
      dkim: dkim.length > 0,
      // OpenDKIM 2.11 signs with one algorithm per process: RSA and Ed25519 keys need a process each.
      dkim_rsa: dkim.some((k) => k.keyType === 'rsa'),
      dkim_ed25519: dkim.some((k) => k.keyType === 'ed25519'),
      tls: site.stack.tls.mode,
      firewall: os.firewall,
      firewall_on: site.stack.firewall,
      selinux: os.selinux,
      // Inbound mail scored by rspamd (spam, and the SPF, DKIM and DMARC of the sender); junk filed by Sieve.
      antispam: site.stack.antispam,
      // DNS blocklists asked about the clients of port 25.
      dnsbl: site.stack.dnsbl.length > 0,
    },
    ports: [],
  };
}
