/**
 * Checks the schema cannot express: name syntax, duplicates, references between mailboxes and aliases,
 * alias loops, secrets. Runs on the raw data even when the structure has errors, so it guards every access.
 */
import type { Diagnostic } from '../model/diagnostic.js';
import { formatPath, locate } from './locate.js';
import type { FieldPath } from './locate.js';
import type { Source } from './source.js';
import { controlProblem, fqdnProblem, isDnsName, isEmail, isFqdn, isIPv4, isIPv6, localPartProblem, parseDuration, parseSize, passwordHashProblem } from './syntax.js';
import { secretProblem } from './secrets.js';
import { dirname } from 'node:path';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export interface SemanticOptions {
  /** How a secret whose variable or file is missing is reported. */
  secrets: 'warning' | 'error' | 'ignore';
}

class Report {
  readonly out: Diagnostic[] = [];
  /** Fields already refused for a control character: their other checks would only repeat it. */
  readonly refused = new Set<string>();
  constructor(private readonly src: Source) {}
  error(path: FieldPath, message: string, key = false): void {
    this.add('error', path, message, key);
  }
  warning(path: FieldPath, message: string, key = false): void {
    this.add('warning', path, message, key);
  }
  private add(severity: Diagnostic['severity'], path: FieldPath, message: string, key: boolean): void {
    if (this.refused.has(formatPath(path))) return;
    const pos = locate(this.src, path, key);
    this.out.push({ severity, file: this.src.file, line: pos.line, column: pos.column, path: formatPath(path), message });
  }
}

export function checkSemantics(src: Source, data: unknown, opts: SemanticOptions): Diagnostic[] {
  const r = new Report(src);
  if (!isObj(data)) return r.out;
  checkControlCharacters(r, data);
  checkHosts(r, data['hosts']);
  checkStack(r, data['stack'], dirname(src.file), opts);
  checkRoles(r, data['hosts'], data['stack']);
  checkDns(r, data['dns'], data);
  checkDomains(r, data['domains'], dirname(src.file), opts);
  return r.out;
}

/**
 * Playbook strings end up in configuration files (one setting per line), zone files and shell commands,
 * where a line break starts a new setting of the playbook's choosing (a `tls.cert` holding
 * "\nrelayhost = ..." adds a relay to main.cf). No field has a use for a control character, so every string
 * value and every mapping key is checked, whatever field it is in (fields added later included).
 */
function checkControlCharacters(r: Report, data: unknown): void {
  for (const f of controlFields(data)) {
    r.error(f.path, f.key ? `the key ${f.problem}` : f.problem, f.key);
    r.refused.add(formatPath(f.path));
  }
}

/** Every string value and mapping key of the raw playbook that holds a control character. */
export function controlFields(v: unknown, path: FieldPath = []): Array<{ path: FieldPath; key: boolean; problem: string }> {
  if (typeof v === 'string') {
    const problem = controlProblem(v);
    return problem ? [{ path, key: false, problem }] : [];
  }
  if (Array.isArray(v)) return v.flatMap((x, i) => controlFields(x, [...path, i]));
  if (!isObj(v)) return [];
  return Object.entries(v).flatMap(([k, x]) => {
    const problem = controlProblem(k);
    return problem ? [{ path: [...path, k], key: true, problem }] : controlFields(x, [...path, k]);
  });
}

function checkFqdn(r: Report, path: FieldPath, v: unknown, what: string): void {
  const s = str(v);
  if (s !== undefined && !isFqdn(s)) r.error(path, `${what} ${fqdnProblem(s)}`);
}

function checkHosts(r: Report, hosts: unknown): void {
  const names = new Map<string, number>();
  const hostnames = new Map<string, number>();
  arr(hosts).forEach((h, i) => {
    if (!isObj(h)) return;
    const p = ['hosts', i];
    const name = str(h['name']);
    if (name !== undefined) {
      if (names.has(name)) r.error([...p, 'name'], `duplicate host name "${name}" (also hosts[${names.get(name)}])`);
      else names.set(name, i);
    }
    const hn = str(h['hostname']);
    checkFqdn(r, [...p, 'hostname'], hn, 'hostname');
    if (hn !== undefined) {
      if (hostnames.has(hn)) r.error([...p, 'hostname'], `duplicate hostname "${hn}" (also hosts[${hostnames.get(hn)}])`);
      else hostnames.set(hn, i);
    }
    const v4 = str(h['ipv4']);
    if (v4 !== undefined && !isIPv4(v4)) r.error([...p, 'ipv4'], `"${v4}" is not an IPv4 address (e.g. 203.0.113.10)`);
    const v6 = str(h['ipv6']);
    if (v6 !== undefined && !isIPv6(v6)) r.error([...p, 'ipv6'], `"${v6}" is not an IPv6 address (e.g. 2001:db8::10)`);
    if (isObj(h['ssh'])) {
      const addr = str(h['ssh']['address']);
      if (addr !== undefined && !isIPv4(addr) && !isIPv6(addr) && !/^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/.test(addr)) {
        r.error([...p, 'ssh', 'address'], `"${addr}" is neither an IP address nor a host name`);
      }
      const user = str(h['ssh']['user']);
      if (user !== undefined && !/^[a-z_][a-z0-9_-]*[$]?$/i.test(user)) r.error([...p, 'ssh', 'user'], `"${user}" is not a valid user name`);
      const hk = str(h['ssh']['host_key']);
      if (hk !== undefined && !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$/.test(hk.trim())) {
        r.error([...p, 'ssh', 'host_key'], 'must be a public host key line such as "ssh-ed25519 AAAA..." (from /etc/ssh/ssh_host_ed25519_key.pub)');
      }
    }
  });
}

function checkStack(r: Report, stack: unknown, baseDir: string, opts: SemanticOptions): void {
  if (!isObj(stack)) return;
  arr(stack['dnsbl']).forEach((z, i) => {
    const s = str(z);
    if (s !== undefined && !isDnsName(s.replace(/\.$/, ''))) r.error(['stack', 'dnsbl', i], `blocklist zone ${fqdnProblem(s)}`);
  });
  const ban = stack['auth_ban'];
  if (isObj(ban)) {
    for (const f of ['within', 'ban'] as const) {
      if (ban[f] !== undefined && parseDuration(ban[f]) === null) r.error(['stack', 'auth_ban', f], `${JSON.stringify(ban[f])} is not a duration such as 10m or 1h`);
      else if (ban[f] !== undefined && parseDuration(ban[f])! < 1) r.error(['stack', 'auth_ban', f], 'must be at least 1s');
    }
  }
  const relay = stack['relay'];
  if (isObj(relay)) {
    const host = str(relay['host']);
    if (host !== undefined && !isIPv4(host) && !isIPv6(host) && !isFqdn(host.replace(/\.$/, ''))) r.error(['stack', 'relay', 'host'], `relay host ${fqdnProblem(host)}`);
    const user = str(relay['username']);
    if (user !== undefined && (user === '' || /\s/.test(user))) r.error(['stack', 'relay', 'username'], 'must be a user name without spaces');
    if (isObj(relay['password']) && opts.secrets !== 'ignore') {
      const prob = secretProblem(relay['password'], baseDir);
      if (prob) {
        const msg = `${prob}; it is needed to render and apply the relay login`;
        if (opts.secrets === 'error') r.error(['stack', 'relay', 'password'], msg);
        else r.warning(['stack', 'relay', 'password'], msg);
      }
    }
  }
  const msl = stack['message_size_limit'];
  if (msl !== undefined && parseSize(msl) === null) r.error(['stack', 'message_size_limit'], `${JSON.stringify(msl)} is not a size such as 50M`);
  const size = parseSize(msl);
  if (size !== null && size < 1024 * 1024) r.error(['stack', 'message_size_limit'], 'must be at least 1M: smaller limits refuse ordinary mail');
  const tls = stack['tls'];
  if (isObj(tls)) {
    const mode = tls['mode'];
    if (mode === 'files') {
      for (const f of ['cert', 'key'] as const) {
        const v = str(tls[f]);
        if (v === undefined) r.error(['stack', 'tls'], `mode "files" needs "${f}": the ${f === 'cert' ? 'certificate chain' : 'private key'} path on the host`);
        else if (!v.startsWith('/')) r.error(['stack', 'tls', f], `"${v}" must be an absolute path on the host`);
      }
    } else {
      for (const f of ['cert', 'key'] as const) {
        if (tls[f] !== undefined) r.error(['stack', 'tls', f], `is only used with mode "files" (mode is "${String(mode)}")`, true);
      }
    }
    const server = str(tls['acme_server']);
    if (server !== undefined && !/^https?:\/\/[^\s/]+/.test(server)) r.error(['stack', 'tls', 'acme_server'], `"${server}" is not an http(s) URL`);
    if (mode !== 'acme') for (const f of ['email', 'acme_server'] as const) if (tls[f] !== undefined) r.error(['stack', 'tls', f], `is only used with mode "acme" (mode is "${String(mode)}")`, true);
    const email = str(tls['email']);
    if (email !== undefined && !isEmail(email)) r.error(['stack', 'tls', 'email'], `"${email}" is not an email address`);
  }
}

/** Contradictions between host roles and the stack: mail must have somewhere to be stored. */
function checkRoles(r: Report, hosts: unknown, stack: unknown): void {
  const list = arr(hosts).filter(isObj);
  if (!list.length) return;
  const roles = list.map((h) => str(h['role']) ?? 'mailbox');
  const mailbox = roles.filter((x) => x === 'mailbox').length;
  if (mailbox === 0) r.error(['hosts'], 'no host has role mailbox: a backup MX forwards mail to a mailbox host, so at least one host must store mailboxes (role: mailbox, the default)', true);
  const replication = isObj(stack) ? stack['replication'] : undefined;
  if (replication === true && mailbox !== 2) {
    r.error(['stack', 'replication'], `replication needs exactly two mailbox hosts (this playbook has ${mailbox}): Dovecot replicates one host with one other`);
  }
}

function checkDns(r: Report, dns: unknown, site: Record<string, unknown>): void {
  if (!isObj(dns)) return;
  const zones = arr(site['domains']).flatMap((d) => (isObj(d) && str(d['name']) !== undefined ? [str(d['name'])!.toLowerCase()] : []));
  const hostnames = new Set(arr(site['hosts']).flatMap((h) => (isObj(h) && str(h['hostname']) ? [str(h['hostname'])!.toLowerCase().replace(/\.$/, '')] : [])));
  arr(dns['nameservers']).forEach((ns, i) => {
    const p: FieldPath = ['dns', 'nameservers', i];
    const name = isObj(ns) ? str(ns['name']) : str(ns);
    checkFqdn(r, isObj(ns) ? [...p, 'name'] : p, name, 'name server');
    if (isObj(ns)) {
      const v4 = str(ns['ipv4']);
      const v6 = str(ns['ipv6']);
      if (v4 !== undefined && !isIPv4(v4)) r.error([...p, 'ipv4'], `"${v4}" is not an IPv4 address (e.g. 203.0.113.53)`);
      if (v6 !== undefined && !isIPv6(v6)) r.error([...p, 'ipv6'], `"${v6}" is not an IPv6 address (e.g. 2001:db8::53)`);
    }
    if (name === undefined || !isFqdn(name)) return;
    const n = name.toLowerCase().replace(/\.$/, '');
    const zone = zones.find((z) => n === z || n.endsWith(`.${z}`));
    const glued = isObj(ns) && (ns['ipv4'] !== undefined || ns['ipv6'] !== undefined);
    if (zone !== undefined && !glued && !hostnames.has(n)) {
      r.warning(p, `name server ${n} lies inside the zone ${zone} but has no address: DNS servers refuse to load the zone (glue needed); write it as { name: ${n}, ipv4: ... }`);
    }
  });
  const hm = str(dns['hostmaster']);
  if (hm !== undefined && !isEmail(hm)) r.error(['dns', 'hostmaster'], `"${hm}" is not an email address`);
  const rpt = str(dns['tlsrpt']);
  if (rpt !== undefined && !isEmail(rpt)) r.error(['dns', 'tlsrpt'], `"${rpt}" is not an email address`);
  const up = dns['update'];
  if (isObj(up)) {
    const server = str(up['server']);
    if (server !== undefined && serverProblem(server)) r.error(['dns', 'update', 'server'], `"${server}" ${serverProblem(server)}`);
  }
}

/** Why "HOST[:PORT]" ("[v6]:PORT") is not a server address, or null. */
export function serverProblem(s: string): string | null {
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(s) ?? /^([^:\s]+)(?::(\d+))?$/.exec(s);
  const host = m?.[1] ?? (isIPv6(s) ? s : undefined);
  if (host === undefined) return 'is not a server address: use HOST or HOST:PORT (an IPv6 address as [ADDR]:PORT)';
  const port = m?.[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `has port ${port}: use 1 to 65535`;
  if (!isIPv4(host) && !isIPv6(host) && !isFqdn(host.replace(/\.$/, '')) && !/^[A-Za-z0-9-]+$/.test(host)) return 'is not an IP address or host name';
  return null;
}

interface LocalIndex {
  /** domain → local part → kind */
  names: Map<string, Map<string, 'mailbox' | 'alias'>>;
}

function buildIndex(domains: unknown[]): LocalIndex {
  const names = new Map<string, Map<string, 'mailbox' | 'alias'>>();
  for (const d of domains) {
    if (!isObj(d)) continue;
    const dn = str(d['name'])?.toLowerCase();
    if (dn === undefined) continue;
    const m = names.get(dn) ?? new Map<string, 'mailbox' | 'alias'>();
    names.set(dn, m);
    for (const mb of arr(d['mailboxes'])) {
      const n = isObj(mb) ? str(mb['name']) : undefined;
      if (n !== undefined && !m.has(n)) m.set(n, 'mailbox');
    }
    if (isObj(d['aliases'])) for (const a of Object.keys(d['aliases'])) if (!m.has(a)) m.set(a, 'alias');
  }
  return { names };
}

/** A reference written in domain `dn`: local part or address → normalized address and whether it is ours. */
export function resolveTarget(target: string, dn: string, localDomains: ReadonlySet<string>): { address: string; local: boolean } {
  const t = target.trim();
  const at = t.lastIndexOf('@');
  if (at < 0) return { address: `${t}@${dn}`, local: true };
  const domain = t.slice(at + 1).toLowerCase();
  return { address: `${t.slice(0, at)}@${domain}`, local: localDomains.has(domain) };
}

function checkDomains(r: Report, domains: unknown, baseDir: string, opts: SemanticOptions): void {
  const list = arr(domains);
  const index = buildIndex(list);
  const localDomains = new Set(index.names.keys());
  const seen = new Map<string, number>();
  const exists = (address: string): boolean => {
    const at = address.lastIndexOf('@');
    return index.names.get(address.slice(at + 1))?.has(address.slice(0, at)) ?? false;
  };
  /** Checks a reference; returns its address when it is a valid local one. */
  const checkRef = (path: FieldPath, raw: unknown, dn: string, what: string, allowExternal: boolean): string | undefined => {
    const t = str(raw);
    if (t === undefined) return undefined;
    const { address, local } = resolveTarget(t, dn, localDomains);
    if (!t.includes('@')) {
      const prob = localPartProblem(t);
      if (prob) {
        r.error(path, `${what} ${prob}`);
        return undefined;
      }
    } else if (!isEmail(t)) {
      r.error(path, `${what} "${t}" is not a valid address`);
      return undefined;
    }
    if (!local) {
      if (!allowExternal) r.error(path, `${what} "${t}" is not an address of this site's domains (${[...localDomains].join(', ')})`);
      return undefined;
    }
    if (!exists(address)) {
      r.error(path, `${what} "${t}" points at ${address}, which is neither a mailbox nor an alias`);
      return undefined;
    }
    return address;
  };

  // Mailboxes with enabled: false: aliases and catch-alls do not deliver to them (a warning where one points).
  const disabled = new Set<string>();
  for (const d of list) {
    const dn = isObj(d) ? str(d['name'])?.toLowerCase() : undefined;
    if (dn === undefined) continue;
    for (const m of arr((d as Record<string, unknown>)['mailboxes'])) {
      const n = isObj(m) && m['enabled'] === false ? str(m['name']) : undefined;
      if (n !== undefined) disabled.add(`${n}@${dn}`);
    }
  }
  const disabledTarget = (path: FieldPath, address: string | undefined, what: string) => {
    if (address !== undefined && disabled.has(address)) r.warning(path, `${address} is disabled (enabled: false): ${what}`);
  };
  const aliasEdges = new Map<string, { targets: string[]; path: FieldPath }>();
  list.forEach((d, i) => {
    if (!isObj(d)) return;
    const p = ['domains', i];
    const dn = str(d['name']);
    if (dn === undefined) return;
    if (!isFqdn(dn)) r.error([...p, 'name'], `domain ${fqdnProblem(dn)}`);
    const key = dn.toLowerCase();
    if (seen.has(key)) r.error([...p, 'name'], `duplicate domain "${dn}" (also domains[${seen.get(key)}])`);
    else seen.set(key, i);
    const dkey = key;

    const spf = d['spf'];
    if (isObj(spf)) {
      arr(spf['include']).forEach((inc, j) => {
        const s = str(inc);
        if (s !== undefined && !isDnsName(s)) r.error([...p, 'spf', 'include', j], `SPF include ${fqdnProblem(s)}`);
      });
    }
    const dkim = d['dkim'];
    if (isObj(dkim) && dkim['grace'] !== undefined && parseDuration(dkim['grace']) === null) r.error([...p, 'dkim', 'grace'], `${JSON.stringify(dkim['grace'])} is not a duration such as 7d`);
    const dmarc = d['dmarc'];
    if (isObj(dmarc)) {
      for (const f of ['rua', 'ruf'] as const) {
        const v = str(dmarc[f]);
        if (v !== undefined && !isEmail(v.replace(/^mailto:/, ''))) r.error([...p, 'dmarc', f], `"${v}" is not an email address`);
      }
    }

    const mbNames = new Map<string, number>();
    arr(d['mailboxes']).forEach((mb, j) => {
      if (!isObj(mb)) return;
      const mp = [...p, 'mailboxes', j];
      const name = str(mb['name']);
      if (name !== undefined) {
        const prob = localPartProblem(name);
        if (prob) r.error([...mp, 'name'], `mailbox ${prob}`);
        if (mbNames.has(name)) r.error([...mp, 'name'], `duplicate mailbox "${name}" in ${dn} (also mailboxes[${mbNames.get(name)}])`);
        else mbNames.set(name, j);
      }
      const hash = mb['password_hash'];
      const secret = mb['password'];
      if (hash !== undefined && secret !== undefined) r.error(mp, 'has both password_hash and password: keep one', false);
      if (hash === undefined && secret === undefined) r.error(mp, `mailbox "${name ?? j}" needs password_hash or password ({ env: NAME } / { file: PATH })`);
      if (typeof hash === 'string') {
        const prob = passwordHashProblem(hash);
        if (prob) r.error([...mp, 'password_hash'], prob);
      }
      if (isObj(secret) && opts.secrets !== 'ignore') {
        const prob = secretProblem(secret, baseDir);
        if (prob) {
          const msg = `${prob}; it is needed to render and apply mailbox ${name ?? j}@${dn}`;
          if (opts.secrets === 'error') r.error([...mp, 'password'], msg);
          else r.warning([...mp, 'password'], msg);
        }
      }
      if (mb['quota'] !== undefined && parseSize(mb['quota']) === null) r.error([...mp, 'quota'], `${JSON.stringify(mb['quota'])} is not a size such as 2G`);
      arr(mb['send_as']).forEach((sa, k) => checkRef([...mp, 'send_as', k], sa, dkey, 'send_as', false));
      if (mb['send'] === false && mb['send_limit'] !== undefined) r.warning([...mp, 'send_limit'], 'has no effect: this mailbox may not send at all (send: false)');
    });

    const aliases = d['aliases'];
    if (isObj(aliases)) {
      for (const [name, targets] of Object.entries(aliases)) {
        const ap = [...p, 'aliases', name];
        const prob = localPartProblem(name);
        if (prob) r.error(ap, `alias ${prob}`, true);
        if (mbNames.has(name)) r.error(ap, `"${name}" is both a mailbox and an alias in ${dn}: keep one`, true);
        const ts = typeof targets === 'string' ? [targets] : arr(targets);
        const locals: string[] = [];
        ts.forEach((t, k) => {
          const tp = typeof targets === 'string' ? ap : [...ap, k];
          const a = checkRef(tp, t, dkey, 'alias target', true);
          disabledTarget(tp, a, 'this alias does not deliver to it, and mail to the alias is refused when no other target takes it');
          if (a) locals.push(a);
        });
        aliasEdges.set(`${name}@${dkey}`, { targets: locals, path: ap });
      }
    }
    if (d['catch_all'] !== undefined) disabledTarget([...p, 'catch_all'], checkRef([...p, 'catch_all'], d['catch_all'], dkey, 'catch_all', true), `unknown local parts of ${dkey} are refused as unknown`);
  });
  checkAliasLoops(r, aliasEdges);
}

function checkAliasLoops(r: Report, edges: Map<string, { targets: string[]; path: FieldPath }>): void {
  const state = new Map<string, 'active' | 'done'>();
  const reported = new Set<string>();
  const visit = (node: string, stack: string[]): void => {
    state.set(node, 'active');
    for (const t of edges.get(node)?.targets ?? []) {
      if (!edges.has(t)) continue;
      if (state.get(t) === 'active') {
        const cycle = [...stack.slice(stack.indexOf(t)), t];
        const key = [...cycle].slice(0, -1).sort().join(',');
        if (!reported.has(key)) {
          reported.add(key);
          r.error(edges.get(node)!.path, `alias loop: ${[...cycle.slice(0, -1), t].join(' -> ')}`, true);
        }
      } else if (state.get(t) !== 'done') visit(t, [...stack, t]);
    }
    state.set(node, 'done');
  };
  for (const n of edges.keys()) if (!state.has(n)) visit(n, [n]);
}
