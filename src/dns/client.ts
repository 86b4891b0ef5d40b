/**
 * The DNS server side of `dns.update`: read a zone (AXFR) and push changes (RFC 2136 UPDATE), both over
 * TCP and signed with TSIG, through dig and nsupdate from bind9-dnsutils (no DNS wire code of our own).
 * Thin I/O around the pure parsers of axfr.ts and update.ts.
 *
 * The key goes to the tools as a file (-k), never on the command line (-y would show the secret in ps):
 * a key file is passed as it is once it parses; key text (from the environment) is written to a file of
 * its own (mode 0600 in a mkdtemp directory) and removed afterwards. No secret appears in any message.
 */
import { Resolver } from 'node:dns/promises';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { parseAxfr, parseSoaQuery } from './axfr.js';
import type { DnsFailure, SoaRecord, ToolOutput } from './axfr.js';
import type { RRset } from './rrset.js';
import { nsupdateFailure, nsupdateScript } from './update.js';
import type { DnsChange } from './update.js';

export interface DnsServer {
  host: string;
  port: number;
}

export interface TsigKey {
  name: string;
  algorithm: string;
  secret: string;
}

/** A BIND key file (as tsig-keygen writes it), or its text with where it came from ("environment variable X"). */
export type TsigKeySource = { file: string } | { text: string; origin: string };

export interface DnsClientOptions {
  /** Seconds to wait for the server (dig: per try; nsupdate: per message). Default 10 and 30. */
  timeoutSeconds?: number;
}

const HOSTNAME = /^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/i;

/** "HOST[:PORT]", IPv6 as "[ADDRESS]:PORT" (a bare IPv6 address means port 53). */
export function parseServer(text: string): DnsServer {
  const t = text.trim();
  const bad = () => new UserError(`DNS server "${text}": expected HOST[:PORT] (an IPv6 address as [ADDRESS]:PORT), e.g. 192.0.2.53 or [2001:db8::53]:5353`);
  let host = t;
  let port = '53';
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracket) [host, port] = [bracket[1]!, bracket[2] ?? '53'];
  else if (!isIPv6(t)) {
    const m = /^([^:]+)(?::(\d+))?$/.exec(t);
    if (!m) throw bad();
    [host, port] = [m[1]!, m[2] ?? '53'];
  }
  const p = Number(port);
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw bad();
  if (bracket ? !isIPv6(host) : !isIP(host) && !HOSTNAME.test(host)) throw bad();
  return { host: host.toLowerCase(), port: p };
}

export function formatServer(s: DnsServer): string {
  return isIPv6(s.host) ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

const ALGORITHMS = new Set(['hmac-md5', 'hmac-sha1', 'hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512']);

/** The one key of a BIND key file: key "NAME" { algorithm ALG; secret "BASE64"; }; */
export function parseTsigKey(text: string, where: string): TsigKey {
  const form = `expected a BIND key file as tsig-keygen writes it: key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`;
  const src = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|\s)(#|\/\/).*$/gm, '$1');
  const clauses = [...src.matchAll(/\bkey\s+(?:"([^"]+)"|([^\s{]+))\s*\{([^}]*)\}\s*;?/g)];
  if (clauses.length !== 1) throw new UserError(`${where}: ${clauses.length ? `${clauses.length} keys, mailops needs exactly one` : 'no key in it'}; ${form}`);
  const [, quoted, bare, body = ''] = clauses[0]!;
  const name = (quoted ?? bare ?? '').replace(/\.$/, '');
  const algorithm = /\balgorithm\s+"?([A-Za-z0-9.-]+)"?\s*;/.exec(body)?.[1]?.toLowerCase().replace(/\.$/, '');
  const secret = /\bsecret\s+"([^"]*)"\s*;/.exec(body)?.[1]?.replace(/\s+/g, '');
  if (!algorithm || !ALGORITHMS.has(algorithm)) throw new UserError(`${where}: key ${name} has ${algorithm ? `an unknown algorithm ${algorithm}` : 'no algorithm'}; ${form}`);
  if (!secret || !/^[A-Za-z0-9+/]+={0,2}$/.test(secret) || secret.length % 4 !== 0) {
    throw new UserError(`${where}: the secret of key ${name} is ${secret ? 'not base64' : 'missing'}; ${form}`);
  }
  return { name, algorithm, secret };
}

/** Tool output with every secret replaced, and the key argument nsupdate echoes on a bad secret (per line). */
export function redact(text: string, secrets: readonly string[]): string {
  let t = text.replace(/(could not create key from [^:\s]+:[^:\s]+:)(?!<secret>).*?(: [a-z][a-z0-9 ]*)?$/gm, '$1<secret>$2');
  for (const s of secrets) if (s.length >= 4) t = t.split(s).join('<secret>');
  return t;
}

export function digArgs(server: DnsServer, zone: string, type: string, keyFile?: string, timeoutSeconds = 10): string[] {
  return [
    '-p',
    String(server.port),
    ...(keyFile ? ['-k', keyFile] : []),
    ...['+tcp', '+norecurse', '+noall', '+answer', '+comments', '+additional', `+time=${timeoutSeconds}`, '+tries=1', '+noidnout'],
    `@${server.host}`,
    zone.replace(/\.$/, '').toLowerCase(),
    type,
  ];
}

export function nsupdateArgs(keyFile?: string, timeoutSeconds = 30): string[] {
  return ['-v', '-t', String(timeoutSeconds), ...(keyFile ? ['-k', keyFile] : [])];
}

export interface FailureContext {
  server: DnsServer;
  zone: string;
  operation: 'transfer' | 'update' | 'query';
  key?: TsigKey;
}

/** One sentence naming the server, the zone and what to do. */
export function failureMessage(f: DnsFailure, ctx: FailureContext): string {
  const s = formatServer(ctx.server);
  const z = ctx.zone.replace(/\.$/, '');
  const key = ctx.key ? `TSIG key ${ctx.key.name}` : 'the TSIG key';
  const check = 'check dns.update.server (or --dns-server)';
  const what = { transfer: 'transfer', update: 'update', query: 'SOA query' }[ctx.operation];
  switch (f.kind) {
    case 'missing-tool':
      return `${ctx.operation === 'update' ? 'nsupdate' : 'dig'} is not installed: install bind9-dnsutils (Debian/Ubuntu; bind-utils on RHEL) to use dns.update (${f.detail})`;
    case 'no-address':
      return `DNS server ${s} does not answer (zone ${z}): its name does not resolve (${f.detail}); ${check}`;
    case 'unreachable':
    case 'timeout':
      return `DNS server ${s} does not answer (zone ${z}): ${f.detail}; ${check} and that it accepts TCP on port ${ctx.server.port}`;
    case 'key-file':
      return `${key} could not be used with ${s} for zone ${z}: ${ctx.operation === 'update' ? 'nsupdate' : 'dig'} says "${f.detail}"; check the key file`;
    case 'tsig':
      if (f.rcode === 'BADTIME') return `${key} was rejected by ${s} for zone ${z} (BADTIME): the clocks of this machine and of the server differ by more than 5 minutes; synchronise them (NTP)`;
      return `${key} was rejected by ${s} for zone ${z}: check the key file (${
        f.rcode === 'BADKEY' ? 'BADKEY: the server knows no key of that name and algorithm' : f.rcode === 'BADSIG' ? 'BADSIG: the secret differs from the server\'s' : (f.rcode ?? f.detail)
      })`;
    case 'refused':
      if (ctx.operation === 'update') return `${s} refused the update of zone ${z} (REFUSED): does the key have update rights for the zone (allow-update or update-policy for ${key})?`;
      if (ctx.operation === 'transfer') return `${s} refused the transfer of zone ${z} (REFUSED): does the key have transfer rights for the zone (allow-transfer for ${key})? mailops reads the zone to know what to change`;
      return `${s} refused the SOA query for zone ${z} (REFUSED): is it a server of the zone? ${check}`;
    case 'notauth':
      return `${s} does not serve zone ${z} (${f.rcode ?? 'no SOA'}): point dns.update.server at the primary server of the zone`;
    case 'notzone':
      return `${s} answered NOTZONE to the update of zone ${z}: a record name lies outside the zone as the server has it (a delegated subzone?)`;
    case 'prereq':
      return `${s} did not apply the update of zone ${z} (${f.rcode}): the zone changed after mailops read it; run the command again`;
    case 'servfail':
      return `${s} failed the ${what} of zone ${z} (SERVFAIL): see the server's log`;
    case 'incomplete':
      return `the transfer of zone ${z} from ${s} was incomplete (${f.detail}): try again`;
    default:
      return `the ${what} of zone ${z} at ${s} failed: ${f.detail}`;
  }
}

async function runTool(tool: 'dig' | 'nsupdate', args: readonly string[], input: string, timeoutMs: number): Promise<ToolOutput> {
  const { $, which } = await import('zx');
  if (!(await which(tool, { nothrow: true }))) return { exitCode: 127, stdout: '', stderr: `${tool}: command not found` };
  const p = $({ nothrow: true, quiet: true, verbose: false, timeout: timeoutMs, ...(input ? { input } : {}) })`exec ${tool} ${[...args]}`;
  if (!input) p.stdin.end();
  const out = await p;
  return { exitCode: out.exitCode, stdout: out.stdout, stderr: out.stderr };
}

/** The key of a source, read and checked; a clear UserError when the file is missing or the key malformed. */
export function readTsigKey(source: TsigKeySource): TsigKey {
  if (!('file' in source)) return parseTsigKey(source.text, `the TSIG key in ${source.origin}`);
  let text: string;
  try {
    text = readFileSync(source.file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`TSIG key file ${source.file}: ${code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'permission denied' : (e as Error).message}; check dns.update.key (or --tsig-key)`);
  }
  return parseTsigKey(text, `TSIG key file ${source.file}`);
}

/** Runs `fn` with the path of a key file that the tools can read, and the key itself. */
async function withKeyFile<T>(source: TsigKeySource, fn: (file: string, key: TsigKey) => Promise<T>): Promise<T> {
  if ('file' in source) return fn(source.file, readTsigKey(source));
  const key = readTsigKey(source);
  const dir = mkdtempSync(join(tmpdir(), 'mailops-tsig-'));
  try {
    chmodSync(dir, 0o700);
    const file = join(dir, 'tsig.key');
    writeFileSync(file, `key "${key.name}" {\n\talgorithm ${key.algorithm};\n\tsecret "${key.secret}";\n};\n`, { mode: 0o600 });
    return await fn(file, key);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const asServer = (s: DnsServer | string) => (typeof s === 'string' ? parseServer(s) : s);

function fail(f: DnsFailure, ctx: FailureContext): never {
  const secrets = ctx.key ? [ctx.key.secret] : [];
  throw new UserError(redact(failureMessage({ ...f, detail: redact(f.detail, secrets) }, ctx), secrets));
}

/** The zone as the server has it (AXFR over TCP, signed): its SOA and every other record set. */
export async function axfr(server: DnsServer | string, zone: string, key: TsigKeySource, opts: DnsClientOptions = {}): Promise<{ soa: SoaRecord; rrsets: RRset[] }> {
  const srv = asServer(server);
  const t = opts.timeoutSeconds ?? 10;
  return withKeyFile(key, async (file, k) => {
    const parsed = parseAxfr(await runTool('dig', digArgs(srv, zone, 'AXFR', file, t), '', (t * 3 + 5) * 1000));
    if ('failure' in parsed) fail(parsed.failure, { server: srv, zone, operation: 'transfer', key: k });
    return parsed;
  });
}

/** Applies the changes of one zone in one signed UPDATE message (all or nothing). */
export async function pushChanges(server: DnsServer | string, zone: string, changes: readonly DnsChange[], key: TsigKeySource, opts: DnsClientOptions = {}): Promise<void> {
  if (changes.length === 0) return;
  const z = zone.replace(/\.$/, '').toLowerCase();
  const other = changes.find((c) => c.zone.toLowerCase() !== z);
  if (other) throw new Error(`internal: a change of zone ${other.zone} pushed with zone ${z}`);
  const srv = asServer(server);
  const t = opts.timeoutSeconds ?? 30;
  await withKeyFile(key, async (file, k) => {
    const r = await runTool('nsupdate', nsupdateArgs(file, t), nsupdateScript(srv, z, changes), (t + 10) * 1000);
    const failure = nsupdateFailure(r);
    if (failure) fail(failure, { server: srv, zone: z, operation: 'update', key: k });
  });
}

/** The serial of the zone's SOA as the server answers it (signed when a key is given). */
export async function soaSerial(server: DnsServer | string, zone: string, opts: DnsClientOptions & { key?: TsigKeySource } = {}): Promise<number> {
  const srv = asServer(server);
  const t = opts.timeoutSeconds ?? 10;
  const query = async (file?: string, k?: TsigKey) => {
    const parsed = parseSoaQuery(await runTool('dig', digArgs(srv, zone, 'SOA', file, t), '', (t * 3 + 5) * 1000), zone);
    if ('failure' in parsed) fail(parsed.failure, { server: srv, zone, operation: 'query', ...(k ? { key: k } : {}) });
    return parsed.soa.serial;
  };
  return opts.key ? withKeyFile(opts.key, query) : query();
}

/** A resolver asking exactly one server ("IP", "IP:PORT", "[v6]:PORT"). */
export function resolverFor(server: string, timeoutMs = 3000): Resolver {
  const r = new Resolver({ timeout: timeoutMs, tries: 2 });
  r.setServers([server]);
  return r;
}
