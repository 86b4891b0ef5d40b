/**
 * The data every template sees for one host: the site model flattened into the lists the configs need.
 * Pure: credentials and DKIM public keys are passed in.
 */
import type { Domain, Host, Site } from '../model/site.js';
import type { OsProfile } from '../os/profile.js';
import { hostKeys } from './dkim.js';
import { authBanView, mailPolicy } from './limits.js';
import type { AuthBanView, SendLimitView } from './limits.js';

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
        ...(m.quota !== undefined ? { quota: m.quota, quotaBytes: m.quotaBytes! } : {}),
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
  const dkim = dkimViews(site, host, os);
  // Only addresses that take mail: not a disabled mailbox, not an alias refused with it.
  const refused = new Set(policy.refused);
  const addresses = domains.flatMap((d) => [...d.mailboxViews, ...d.aliasViews].map((x) => x.address)).filter((a) => !refused.has(a));
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
    catchAlls: policy.catchAlls,
    senderLogins: [...owners.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([address, s]) => ({ address, logins: [...s].sort() })),
    sendBlocked: policy.sendBlocked,
    sendLimits: policy.sendLimits,
    refusedRecipients: policy.refused,
    disabledLogins: policy.disabledLogins,
    ...(site.stack.authBan ? { authBan: authBanView(site.stack.authBan) } : {}),
    srsDomain: domains[0]?.name ?? host.hostname,
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
      auth_ban: site.stack.authBan !== undefined,
      send_limits: policy.sendLimits.length > 0,
    },
    ports: [],
  };
}
