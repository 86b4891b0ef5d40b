/** Raw (schema-valid, semantically checked) playbook → normalized Site with defaults applied. */
import { dirname } from 'node:path';
import type { Alias, Domain, Host, Mailbox, Site, Stack } from '../model/site.js';
import type { RawDomain, RawMailbox, RawSite } from './schema.js';
import { resolveTarget } from './semantic.js';
import { expandPath, toSecretRef } from './secrets.js';
import { parseSize } from './syntax.js';

export const DEFAULT_MESSAGE_SIZE = '50M';

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
    ...(d.dkim ? { dkim: { selector: d.dkim.selector, key: d.dkim.key ?? 'rsa-2048' } } : {}),
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
  };
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}
