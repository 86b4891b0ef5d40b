/**
 * Property tests: random mutations of valid playbooks never crash the validator; control characters in
 * playbook strings never reach a rendered file or command.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { checkSite } from '../../src/site/load.js';
import { formatPath } from '../../src/site/locate.js';
import { renderSite } from '../../src/render/site.js';
import { emptyState } from '../../src/state/state.js';

const seeds = ['../../playbooks/examples/contract.yaml', '../golden/multi-domain/site.yaml', '../fixtures/minimal.yaml'].map((p) =>
  readFileSync(new URL(p, import.meta.url), 'utf8'),
);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const anyValue: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: false }),
    fc.string(),
    fc.constantFrom('', '-all', 'postfix', 'exim', 'alice', 'a@b.c', '50M', '{SHA512-CRYPT}$6$x$y', '::1', '256.1.1.1', 'Exa.mple', 'x'.repeat(300)),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 3 }),
  ),
})).v;

/** Paths into a JSON value. */
function paths(v: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function mutateAt(root: Json, path: Array<string | number>, op: 'set' | 'delete' | 'add' | 'dup', value: Json, key: string): Json {
  const copy = structuredClone(root);
  if (path.length === 0) return op === 'set' ? value : copy;
  let parent: Json = copy;
  for (const seg of path.slice(0, -1)) parent = (parent as Record<string, Json>)[seg as string] as Json;
  const last = path[path.length - 1]!;
  const container = parent as Record<string | number, Json>;
  if (op === 'set') container[last] = value;
  else if (op === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete container[last];
  } else if (op === 'add') {
    const target = container[last];
    if (Array.isArray(target)) target.push(value);
    else if (target && typeof target === 'object') (target as Record<string, Json>)[key] = value;
    else container[last] = value;
  } else if (Array.isArray(parent)) parent.push(structuredClone(parent[last as number]!));
  return copy;
}

function assertClean(text: string | Buffer): void {
  const r = checkSite('fuzz.yaml', { secrets: 'warning' }, text);
  if (!r.ok) {
    expect(r.diagnostics.length).toBeGreaterThan(0);
    for (const d of r.diagnostics) {
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.column).toBeGreaterThanOrEqual(1);
      expect(typeof d.message).toBe('string');
      expect(d.message.length).toBeGreaterThan(0);
    }
  }
}

describe('validator fuzzing', () => {
  const parsed = seeds.map((s) => checkSite('seed.yaml', { secrets: 'ignore' }, s));
  it('seeds are valid', () => {
    for (const p of parsed) expect(p.ok).toBe(true);
  });

  it('structural mutations (thousands) never crash it', () => {
    const objects = seeds.map((s) => parse(s) as Json);
    fc.assert(
      fc.property(
        fc.nat(objects.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('set', 'delete', 'add', 'dup') as fc.Arbitrary<'set' | 'delete' | 'add' | 'dup'>, anyValue, fc.string({ maxLength: 10 })), { minLength: 1, maxLength: 4 }),
        (which, ops) => {
          let doc: Json = objects[which]!;
          for (const [n, op, value, key] of ops) {
            const ps = paths(doc);
            doc = mutateAt(doc, ps[n % ps.length]!, op, value, key);
          }
          assertClean(stringify(doc));
        },
      ),
      { numRuns: 3000, seed: 20261123 },
    );
  });

  it('text mutations (thousands) never crash it', () => {
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 40 }), fc.string({ maxLength: 6, unit: 'binary' })), { minLength: 1, maxLength: 5 }),
        (which, edits) => {
          let t = seeds[which]!;
          for (const [at, del, ins] of edits) {
            const i = at % (t.length + 1);
            t = t.slice(0, i) + ins + t.slice(i + del);
          }
          assertClean(t);
        },
      ),
      { numRuns: 3000, seed: 7 },
    );
  });
});

/**
 * Control characters (a newline in tls.cert could add a relay rule to main.cf): for every playbook string
 * that reaches a config file, a zone or a command, a value holding one is either refused by the validator
 * or reaches no rendered output raw.
 */
describe('control characters in playbook strings', () => {
  const HASH = '{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0';
  const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ root@mx1';
  type Mode = 'files' | 'acme';
  const base = (mta: 'postfix' | 'exim', mode: Mode): Json => ({
    site: 'demo',
    hosts: [
      {
        name: 'mx1',
        ssh: { address: '192.0.2.1', port: 22, user: 'root', identity: '/root/.ssh/id_ed25519', host_key: HOST_KEY },
        hostname: 'mail.example.org',
        ipv4: '192.0.2.1',
        ipv6: '2001:db8::1',
      },
    ],
    stack: {
      mta,
      pop3: true,
      tls: mode === 'files' ? { mode, cert: '/etc/ssl/mail/cert.pem', key: '/etc/ssl/mail/key.pem' } : { mode, email: 'le@example.org', acme_server: 'https://acme.example/dir' },
      message_size_limit: '50M',
    },
    dns: {
      nameservers: ['ns1.example.net', { name: 'ns2.example.org', ipv4: '192.0.2.53' }],
      hostmaster: 'hostmaster@example.org',
      tlsrpt: 'tls@example.org',
      update: { server: '192.0.2.53:53', key: { file: '/etc/mailops/tsig.key' } },
    },
    domains: [
      {
        name: 'example.org',
        dkim: { selector: 'mail' },
        spf: { include: ['_spf.provider.example'] },
        dmarc: { policy: 'none', rua: 'dmarc@example.org' },
        mailboxes: [{ name: 'alice', password_hash: HASH, quota: '2G', send_as: ['sales'] }],
        aliases: { postmaster: 'alice', sales: ['alice', 'someone@partner.example'] },
        catch_all: 'alice',
      },
    ],
  });

  /** Where a value goes, and how to build a plausible value around the injected text. */
  interface Target {
    path: Array<string | number>;
    make: (inj: string) => string;
    mode?: Mode;
    /** Inject into the mapping key at `path` instead of its value. */
    key?: boolean;
  }
  const targets: Target[] = [
    { path: ['site'], make: (i) => `demo${i}` },
    { path: ['hosts', 0, 'name'], make: (i) => `mx1${i}` },
    { path: ['hosts', 0, 'hostname'], make: (i) => `mail${i}.example.org` },
    { path: ['hosts', 0, 'ipv4'], make: (i) => `192.0.2.1${i}` },
    { path: ['hosts', 0, 'ipv6'], make: (i) => `2001:db8::1${i}` },
    { path: ['hosts', 0, 'ssh', 'address'], make: (i) => `mx1${i}.example.org` },
    { path: ['hosts', 0, 'ssh', 'user'], make: (i) => `root${i}` },
    { path: ['hosts', 0, 'ssh', 'identity'], make: (i) => `/root/.ssh/id${i}` },
    { path: ['hosts', 0, 'ssh', 'host_key'], make: (i) => `${HOST_KEY}${i}` },
    { path: ['stack', 'tls', 'cert'], make: (i) => `/etc/ssl/mail/${i}`, mode: 'files' },
    { path: ['stack', 'tls', 'key'], make: (i) => `/etc/ssl/mail/${i}.pem`, mode: 'files' },
    { path: ['stack', 'tls', 'email'], make: (i) => `le${i}@example.org`, mode: 'acme' },
    { path: ['stack', 'tls', 'acme_server'], make: (i) => `https://acme.example/${i}`, mode: 'acme' },
    { path: ['stack', 'message_size_limit'], make: (i) => `50M${i}` },
    { path: ['dns', 'nameservers', 0], make: (i) => `ns1${i}.example.net` },
    { path: ['dns', 'nameservers', 1, 'name'], make: (i) => `ns2${i}.example.org` },
    { path: ['dns', 'nameservers', 1, 'ipv4'], make: (i) => `192.0.2.53${i}` },
    { path: ['dns', 'hostmaster'], make: (i) => `hostmaster${i}@example.org` },
    { path: ['dns', 'tlsrpt'], make: (i) => `tls${i}@example.org` },
    { path: ['dns', 'update', 'server'], make: (i) => `192.0.2.53${i}` },
    { path: ['dns', 'update', 'key', 'file'], make: (i) => `/etc/mailops/${i}` },
    { path: ['domains', 0, 'name'], make: (i) => `example${i}.org` },
    { path: ['domains', 0, 'dkim', 'selector'], make: (i) => `mail${i}` },
    { path: ['domains', 0, 'spf', 'include', 0], make: (i) => `_spf${i}.provider.example` },
    { path: ['domains', 0, 'dmarc', 'rua'], make: (i) => `dmarc${i}@example.org` },
    { path: ['domains', 0, 'mailboxes', 0, 'name'], make: (i) => `alice${i}` },
    { path: ['domains', 0, 'mailboxes', 0, 'password_hash'], make: (i) => `${HASH}${i}` },
    { path: ['domains', 0, 'mailboxes', 0, 'quota'], make: (i) => `2G${i}` },
    { path: ['domains', 0, 'mailboxes', 0, 'send_as', 0], make: (i) => `sales${i}` },
    { path: ['domains', 0, 'aliases', 'postmaster'], make: (i) => `alice${i}` },
    { path: ['domains', 0, 'aliases', 'sales', 1], make: (i) => `someone${i}@partner.example` },
    { path: ['domains', 0, 'aliases', 'postmaster'], make: (i) => `post${i}master`, key: true },
    { path: ['domains', 0, 'catch_all'], make: (i) => `alice${i}` },
  ];

  const name = (t: Target) => `${formatPath(t.path)}${t.key ? ' (key)' : ''}`;

  /** C0 controls, DEL, C1 controls (U+0085 NEL) and the Unicode line separators. */
  const controls = [...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)), '\x7f', '\x85', '\x9b', '\u2028', '\u2029'];
  const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

  function place(doc: Json, t: Target, value: string): Json {
    const copy = structuredClone(doc) as Record<string, Json>;
    let parent: Json = copy;
    for (const seg of t.path.slice(0, -1)) parent = (parent as Record<string, Json>)[seg as string] as Json;
    const last = t.path[t.path.length - 1]!;
    const container = parent as Record<string | number, Json>;
    if (container[last] === undefined) throw new Error(`fixture has no ${t.path.join('.')}`);
    if (t.key) {
      // Keep the order of the mapping: rebuild it with the key renamed.
      const entries = Object.entries(container).map(([k, v]) => (k === last ? [value, v] : [k, v]) as [string, Json]);
      for (const k of Object.keys(container)) delete container[k];
      for (const [k, v] of entries) container[k] = v;
    } else container[last] = value;
    return copy;
  }

  /** Every text mailops writes to a host or runs there, and every zone. */
  function outputs(doc: Json): string[] {
    const r = checkSite('/work/fuzz/site.yaml', { secrets: 'ignore' }, stringify(doc));
    if (!r.ok) return [];
    const rendered = renderSite(r.site, emptyState());
    const texts: string[] = rendered.zones.map((z) => z.text);
    for (const h of rendered.hosts) {
      for (const f of h.files) texts.push(f.path, f.content);
      for (const d of h.directories) texts.push(d.path);
      for (const c of h.commands) texts.push(c.name, c.run, c.creates ?? '', c.unless ?? '');
      for (const v of h.validations) texts.push(v.run);
      for (const s of h.services) texts.push(s.reload, s.restart);
      for (const k of h.dkimKeys) texts.push(k.keyFile);
      texts.push(h.tlsCert ?? '', h.tlsKey ?? '', ...h.packages, ...h.users.map((u) => u.home));
    }
    return texts;
  }

  const baseline = new Map<string, Set<string>>();
  for (const mta of ['postfix', 'exim'] as const) {
    for (const mode of ['files', 'acme'] as const) baseline.set(`${mta}/${mode}`, new Set(outputs(base(mta, mode)).join('').match(CONTROL) ?? []));
  }

  it('the fixtures are valid and render (the property below is not vacuous)', () => {
    for (const mta of ['postfix', 'exim'] as const) {
      for (const mode of ['files', 'acme'] as const) {
        const r = checkSite('/work/fuzz/site.yaml', { secrets: 'ignore' }, stringify(base(mta, mode)));
        expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
        expect(outputs(base(mta, mode)).length).toBeGreaterThan(10);
      }
    }
    // Only line breaks (and tabs) in the rendered texts themselves; CR LF in the MTA-STS policy (RFC 8461).
    for (const s of baseline.values()) expect([...s].every((c) => c === '\n' || c === '\t' || c === '\r')).toBe(true);
  });

  it('a value with a control character is refused, or no rendered text holds it raw', () => {
    const part = fc.oneof(fc.string({ maxLength: 6 }), fc.stringMatching(/^[a-z0-9./-]{0,6}$/), fc.string({ maxLength: 4, unit: 'binary-ascii' }));
    fc.assert(
      fc.property(
        fc.constantFrom(...targets.map(name)),
        fc.constantFrom('postfix', 'exim') as fc.Arbitrary<'postfix' | 'exim'>,
        part,
        fc.constantFrom(...controls),
        part,
        (which, mta, before, control, after) => {
          const t = targets.find((x) => name(x) === which)!;
          // Markers around the control character: what precedes and follows it is recognisable in any output.
          const head = `zqxa${before}`;
          const tail = `${after}zqxb`;
          const doc = place(base(mta, t.mode ?? 'files'), t, t.make(`${head}${control}${tail}`));
          const text = stringify(doc);
          expect(parse(text), 'the YAML carries the value as generated').toEqual(doc);
          const r = checkSite('/work/fuzz/site.yaml', { secrets: 'ignore' }, text);
          if (!r.ok) {
            // Refused: at the field itself, with a position.
            const field = formatPath(t.key ? [...t.path.slice(0, -1), t.make(`${head}${control}${tail}`)] : t.path);
            const err = r.diagnostics.find((d) => d.severity === 'error' && d.path === field);
            expect(err, `an error at ${field}; got ${r.diagnostics.map((d) => `${d.path}: ${d.message}`).join('; ')}`).toBeDefined();
            expect(err!.line).toBeGreaterThanOrEqual(1);
            return;
          }
          const allowed = baseline.get(`${mta}/${t.mode ?? 'files'}`)!;
          for (const out of outputs(doc)) {
            expect(out.includes(`${head}${control}`), `${which}: ${JSON.stringify(head + control)} reached a rendered text`).toBe(false);
            expect(out.includes(`${control}${tail}`), `${which}: ${JSON.stringify(control + tail)} reached a rendered text`).toBe(false);
            for (const c of out.match(CONTROL) ?? []) expect(allowed.has(c), `${which}: ${JSON.stringify(c)} in a rendered text`).toBe(true);
          }
        },
      ),
      { numRuns: 600, seed: 20261124 },
    );
  });
});
