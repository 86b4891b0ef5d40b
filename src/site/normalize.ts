/** Raw (schema-valid, semantically checked) playbook → normalized Site with defaults applied. */
import { dirname } from 'node:path';
import type { Alias, Domain, Host, Mailbox, Site, Stack } from '../model/site.js';
import type { RawDomain, RawMailbox, RawSite } from './schema.js';
import { resolveTarget } from './semantic.js';
import { expandPath, toSecretRef } from './secrets.js';
import { parseDuration, parseSize } from './syntax.js';

export const DEFAULT_MESSAGE_SIZE = '50M';
/** How long a replaced DKIM key stays published: mail in queues and forwarded mail is verified later. */
export const DEFAULT_DKIM_GRACE = '7d';
export const DEFAULT_AUTH_BAN = { attempts: 5, within: '10m', ban: '1h' } as const;

export function normalize(raw: RawSite, file: string): Site {
  const baseDir = dirname(file);
  const localDomains = new Set(raw.domains.map((d) => d.name.toLowerCase()));
  const hosts: Host[] = raw.hosts.map((h) => ({
    name: h.name,
    ssh: {
      address: h.ssh.address,
      port: h.ssh.port ?? 22,
      user: h.ssh.user ?? 'root',
      ...(h.ssh.identity !== undefined ? { identity: expandPath(h.ssh.identity, baseDir) } : {}),
      ...(h.ssh.host_key !== undefined ? { hostKey: h.ssh.host_key.trim() } : {}),
    },
    hostname: h.hostname,
    ipv4: h.ipv4,
    ...(h.ipv6 !== undefined ? { ipv6: h.ipv6 } : {}),
    os: h.os ?? 'auto',
    role: h.role ?? 'mailbox',
  }));
  const s = raw.stack ?? {};
  const stack: Stack = {
    mta: s.mta ?? 'postfix',
    imap: s.imap ?? true,
    pop3: s.pop3 ?? false,
    tls: {
      mode: s.tls?.mode ?? 'self-signed',
      ...(s.tls?.cert !== undefined ? { cert: s.tls.cert } : {}),
      ...(s.tls?.key !== undefined ? { key: s.tls.key } : {}),
      ...(s.tls?.email !== undefined ? { email: s.tls.email } : {}),
      ...(s.tls?.acme_server !== undefined ? { acmeServer: s.tls.acme_server } : {}),
    },
    messageSizeLimit: parseSize(s.message_size_limit ?? DEFAULT_MESSAGE_SIZE)!,
    firewall: s.firewall ?? true,
    antispam: s.antispam ?? true,
    dnsbl: dedupe((s.dnsbl ?? []).map((z) => z.replace(/\.$/, '').toLowerCase())),
    ...(s.auth_ban === false
      ? {}
      : {
          authBan: {
            attempts: (typeof s.auth_ban === 'object' ? s.auth_ban.attempts : undefined) ?? DEFAULT_AUTH_BAN.attempts,
            within: parseDuration((typeof s.auth_ban === 'object' ? s.auth_ban.within : undefined) ?? DEFAULT_AUTH_BAN.within)!,
            ban: parseDuration((typeof s.auth_ban === 'object' ? s.auth_ban.ban : undefined) ?? DEFAULT_AUTH_BAN.ban)!,
          },
        }),
    replication: s.replication ?? false,
    ...(s.relay
      ? {
          relay: {
            host: s.relay.host.replace(/\.$/, '').toLowerCase(),
            port: s.relay.port ?? 587,
            username: s.relay.username,
            password: toSecretRef(s.relay.password as Record<string, unknown>, baseDir)!,
          },
        }
      : {}),
    autoconfig: s.autoconfig ?? true,
    mtaSts: s.mta_sts ?? 'testing',
  };
  return {
    site: raw.site,
    file,
    hosts,
    stack,
    dns: {
      ttl: raw.dns.ttl ?? 3600,
      nameservers: raw.dns.nameservers.map((n) => nsName(n)),
      nameserverAddresses: Object.fromEntries(
        raw.dns.nameservers.flatMap((n) => (typeof n === 'string' || (n.ipv4 === undefined && n.ipv6 === undefined) ? [] : [[nsName(n), pick(n, ['ipv4', 'ipv6'])]])),
      ),
      hostmaster: raw.dns.hostmaster ?? '',
      ...(raw.dns.update ? { update: { server: raw.dns.update.server.trim(), key: toSecretRef(raw.dns.update.key as Record<string, unknown>, baseDir)! } } : {}),
      ...(raw.dns.tlsrpt !== undefined ? { tlsrpt: raw.dns.tlsrpt } : {}),
    },
    domains: raw.domains.map((d) => normalizeDomain(d, baseDir, localDomains)),
  };
}

const nsName = (n: string | { name: string }) => (typeof n === 'string' ? n : n.name).replace(/\.$/, '').toLowerCase();

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function normalizeDomain(d: RawDomain, baseDir: string, localDomains: ReadonlySet<string>): Domain {
  const name = d.name.toLowerCase();
  const ref = (t: string) => resolveTarget(t, name, localDomains).address;
  const mailboxes: Mailbox[] = (d.mailboxes ?? []).map((m) => normalizeMailbox(m, name, baseDir, ref));
  const aliases: Alias[] = Object.entries(d.aliases ?? {})
    .map(([local, t]) => ({ local, address: `${local}@${name}`, targets: dedupe((typeof t === 'string' ? [t] : t).map(ref)) }))
    .sort((a, b) => a.local.localeCompare(b.local));
  return {
    name,
    ...(d.dkim ? { dkim: { selector: d.dkim.selector, key: d.dkim.key ?? 'rsa-2048', grace: parseDuration(d.dkim.grace ?? DEFAULT_DKIM_GRACE)! } } : {}),
    spf: { policy: d.spf?.policy ?? '-all', include: d.spf?.include ?? [] },
    ...(d.dmarc ? { dmarc: { policy: d.dmarc.policy, ...pick(d.dmarc, ['rua', 'ruf', 'pct']) } } : {}),
    mailboxes,
    aliases,
    ...(d.catch_all !== undefined ? { catchAll: ref(d.catch_all) } : {}),
  };
}

function normalizeMailbox(m: RawMailbox, domain: string, baseDir: string, ref: (t: string) => string): Mailbox {
  const secret = m.password ? toSecretRef(m.password as Record<string, unknown>, baseDir) : undefined;
  return {
    local: m.name,
    address: `${m.name}@${domain}`,
    ...(m.password_hash !== undefined ? { passwordHash: m.password_hash } : {}),
    ...(secret ? { passwordSecret: secret } : {}),
    ...(m.quota !== undefined ? { quota: String(m.quota), quotaBytes: parseSize(m.quota)! } : {}),
    sendAs: dedupe((m.send_as ?? []).map(ref)),
    send: m.send ?? true,
    ...(m.send_limit !== undefined ? { sendLimit: { count: Number(m.send_limit.split('/')[0]), per: m.send_limit.split('/')[1] as 'hour' | 'day' } } : {}),
    enabled: m.enabled ?? true,
  };
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}
