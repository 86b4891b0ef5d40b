/** The DKIM key lifecycle with plain data: what the host holds and what DNS serves in, the host's keys out. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAMILY_FACTS } from '../../src/facts/host-facts.js';
import type { DesiredHost } from '../../src/model/desired.js';
import type { Host, Site } from '../../src/model/site.js';
import { lifecycleText, parseLifecycle, planDkim, record, stateDkim } from '../../src/plan/dkim.js';
import type { DkimInput, DkimKeyState, DkimPlan, HeldKey } from '../../src/plan/dkim.js';
import { recordDkim } from '../../src/apply/site.js';
import { publishedKeys } from '../../src/dns/records.js';
import { emptyState } from '../../src/state/state.js';
import { checkSite } from '../../src/site/load.js';
import { readFileSync } from 'node:fs';

const minimal = readFileSync(new URL('../fixtures/minimal.yaml', import.meta.url), 'utf8');
const DAY = 86400;
// 2026-11-23 12:00 UTC
const NOW = Date.UTC(2026, 10, 23, 12) / 1000;

/** The minimal playbook with DKIM `key` on example.org, `hosts` hosts (mx1, mx2...) and the grace given. */
function site(key = 'rsa-2048', hosts = 1, grace = '7d', order?: string[]): Site {
  const names = order ?? Array.from({ length: hosts }, (_, i) => `mx${i + 1}`);
  const hostText = names.map((n) => `  - name: ${n}\n    ssh: { address: 192.0.2.${n.slice(2)} }\n    hostname: ${n}.example.org\n    ipv4: 192.0.2.${n.slice(2)}\n`).join('');
  const text = minimal.replace(/hosts:\n(?: {2,}.*\n)+/, `hosts:\n${hostText}`).replace('  - name: example.org\n', `  - name: example.org\n    dkim: { selector: mail, key: ${key}, grace: ${grace} }\n`);
  const r = checkSite('/tmp/site.yaml', { secrets: 'warning' }, text);
  if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
  return r.site;
}

const host = (s: Site, name = 'mx1'): Host => s.hosts.find((h) => h.name === name)!;
const held = (selector: string, algorithm: 'rsa' | 'ed25519' = 'rsa', bits = algorithm === 'rsa' ? 2048 : 256): HeldKey => ({ domain: 'example.org', selector, algorithm, bits, publicKey: `PUB${selector}` });
const life = (...xs: Array<[string, DkimKeyState['status'], number?]>) => Object.fromEntries(xs.map(([sel, status, since]) => [`${sel}._domainkey.example.org`, { status, ...(since !== undefined ? { since } : {}) }]));

function run(s: Site, over: Partial<DkimInput> = {}): DkimPlan {
  return planDkim({ site: s, host: host(s), held: [], taken: new Set(), served: () => false, now: NOW, ...over });
}
const brief = (p: DkimPlan) => p.keys.map((k) => `${k.selector} ${k.algorithm}-${k.bits} ${k.status}${k.since !== undefined ? ` @${k.since}` : ''}`);

describe('DKIM lifecycle', () => {
  it('a fresh host makes its first keys, which sign at once: the playbook selector, an RSA companion for Ed25519, <selector>-N on the other hosts', () => {
    expect(brief(run(site()))).toEqual(['mail rsa-2048 signing']);
    expect(brief(run(site('ed25519')))).toEqual(['mail ed25519-256 signing', 'mail-rsa rsa-2048 signing']);
    const two = site('rsa-4096', 2);
    expect(brief(run(two, { host: host(two, 'mx2') }))).toEqual(['mail-2 rsa-4096 signing']);
    expect(run(site()).notes).toEqual(['DKIM mail._domainkey.example.org: new rsa-2048 key, signs from this run on']);
  });

  it('keys made by an older mailops (no lifecycle file) keep signing: nothing changes', () => {
    const p = run(site(), { held: [held('mail')] });
    expect(brief(p)).toEqual(['mail rsa-2048 signing']);
    expect(p.notes).toEqual([]);
    expect(p.remove).toEqual([]);
  });

  it('a change of size makes a new key under a new selector, published first; it signs once DNS serves it; the old one is retired, then deleted after the grace period', () => {
    const s = site('rsa-4096');
    const start = run(s, { held: [held('mail')], lifecycle: life(['mail', 'signing']) });
    expect(brief(start)).toEqual(['mail rsa-2048 signing', 'mail-20261123 rsa-4096 pending']);
    expect(start.notes[0]).toMatch(/^DKIM mail-20261123._domainkey.example.org: new rsa-4096 key to replace mail._domainkey.example.org \(rsa-2048\); it is published first and signs once DNS serves it/);
    // The key exists on the host now; DNS does not serve it yet: the old key keeps signing.
    const hostHas = { held: [held('mail'), held('mail-20261123', 'rsa', 4096)], lifecycle: life(['mail', 'signing'], ['mail-20261123', 'pending']) };
    const waiting = run(s, { ...hostHas, now: NOW + 60 });
    expect(brief(waiting)).toEqual(['mail rsa-2048 signing', 'mail-20261123 rsa-4096 pending']);
    expect(waiting.notes).toEqual(['DKIM mail-20261123._domainkey.example.org: waiting for DNS to serve it before it signs; mail._domainkey.example.org signs until then']);
    // DNS serves it: it signs, the old key is retired from now on.
    const served: string[] = [];
    const switched = run(s, { ...hostHas, now: NOW + 120, served: (k) => (served.push(record(k)), true) });
    expect(served).toEqual(['mail-20261123._domainkey.example.org']);
    expect(brief(switched)).toEqual(['mail-20261123 rsa-4096 signing', `mail rsa-2048 retired @${NOW + 120}`]);
    expect(switched.notes).toEqual(['DKIM mail-20261123._domainkey.example.org: DNS serves it, so it signs from now on; mail._domainkey.example.org stops signing and stays published for 7 days']);
    // Within the grace period the retired key stays; after it, it is deleted.
    const after = { held: hostHas.held, lifecycle: life(['mail', 'retired', NOW + 120], ['mail-20261123', 'signing']) };
    expect(brief(run(s, { ...after, now: NOW + 120 + 7 * DAY - 1 }))).toEqual(['mail-20261123 rsa-4096 signing', `mail rsa-2048 retired @${NOW + 120}`]);
    const gone = run(s, { ...after, now: NOW + 120 + 7 * DAY });
    expect(brief(gone)).toEqual(['mail-20261123 rsa-4096 signing']);
    expect(gone.remove.map(record)).toEqual(['mail._domainkey.example.org']);
    expect(gone.notes).toEqual(['DKIM mail._domainkey.example.org: retired for 7 days (grace 7 days): unpublished and deleted']);
  });

  it('a change of type: Ed25519 joins the RSA key, which stays as its companion; the new key is published before it signs', () => {
    const s = site('ed25519');
    const p = run(s, { held: [held('mail')], lifecycle: life(['mail', 'signing']) });
    expect(brief(p)).toEqual(['mail-20261123 ed25519-256 pending', 'mail rsa-2048 signing']);
    // Back to RSA: the Ed25519 key stops signing at once (the RSA key signs) and is retired.
    const back = run(site('rsa-2048'), { held: [held('mail'), held('mail-20261123', 'ed25519')], lifecycle: life(['mail', 'signing'], ['mail-20261123', 'signing']) });
    expect(brief(back)).toEqual([`mail-20261123 ed25519-256 retired @${NOW}`, 'mail rsa-2048 signing']);
  });

  it('a pending key of a type the playbook no longer asks for never signed: it is deleted at once', () => {
    const p = run(site('rsa-2048'), { held: [held('mail'), held('mail-20261123', 'rsa', 4096)], lifecycle: life(['mail', 'signing'], ['mail-20261123', 'pending']) });
    expect(brief(p)).toEqual(['mail rsa-2048 signing']);
    expect(p.remove.map(record)).toEqual(['mail-20261123._domainkey.example.org']);
  });

  it('selectors are the host’s, not its position’s: reordering hosts changes nothing; a new host never takes a selector another host holds', () => {
    const s = site('rsa-2048', 2, '7d', ['mx2', 'mx1']);
    expect(brief(run(s, { host: host(s, 'mx2'), held: [held('mail-2')], lifecycle: life(['mail-2', 'signing']) }))).toEqual(['mail-2 rsa-2048 signing']);
    expect(brief(run(s, { host: host(s, 'mx1'), held: [held('mail')], lifecycle: life(['mail', 'signing']) }))).toEqual(['mail rsa-2048 signing']);
    const three = site('rsa-2048', 3, '7d', ['mx3', 'mx1', 'mx2']);
    const p = run(three, { host: host(three, 'mx3'), taken: new Set(['mail._domainkey.example.org', 'mail-2._domainkey.example.org']) });
    expect(brief(p)).toEqual(['mail-20261123 rsa-2048 signing']);
  });

  it('dkim rotate: a new key of the same type, published first; a rotation under way is not started twice', () => {
    const s = site();
    const p = run(s, { held: [held('mail')], lifecycle: life(['mail', 'signing']), rotate: new Set(['example.org']) });
    expect(brief(p)).toEqual(['mail rsa-2048 signing', 'mail-20261123 rsa-2048 pending']);
    const again = run(s, { held: [held('mail'), held('mail-20261123')], lifecycle: life(['mail', 'signing'], ['mail-20261123', 'pending']), rotate: new Set(['example.org']), now: NOW + DAY });
    expect(brief(again)).toEqual(['mail rsa-2048 signing', 'mail-20261123 rsa-2048 pending']);
    // The same day again, after the first rotation finished: the next selector.
    const later = run(s, { held: [held('mail-20261123'), held('mail')], lifecycle: life(['mail-20261123', 'signing'], ['mail', 'retired', NOW]), rotate: new Set(['example.org']) });
    expect(brief(later)).toEqual(['mail-20261123 rsa-2048 signing', 'mail-20261123-2 rsa-2048 pending', `mail rsa-2048 retired @${NOW}`]);
  });

  it('a key file no lifecycle names (a run that did not finish) is reused when it is of the right type, never published otherwise', () => {
    const s = site('rsa-4096');
    const p = run(s, { held: [held('mail'), held('mail-20261120', 'rsa', 4096), held('other', 'ed25519')], lifecycle: life(['mail', 'signing']) });
    expect(brief(p)).toEqual(['mail rsa-2048 signing', 'mail-20261120 rsa-4096 pending']);
  });

  it('a domain that stops signing: its key is retired for the grace period, then deleted', () => {
    const s = site();
    const noDkim = { ...s, domains: s.domains.map((d) => { const { dkim: _, ...rest } = d; return rest; }) } as Site;
    const p = run(noDkim, { held: [held('mail')], lifecycle: life(['mail', 'signing']) });
    expect(brief(p)).toEqual([`mail rsa-2048 retired @${NOW}`]);
    const q = run(noDkim, { held: [held('mail')], lifecycle: life(['mail', 'retired', NOW]), now: NOW + 7 * DAY });
    expect(q.keys).toEqual([]);
    expect(q.remove.map(record)).toEqual(['mail._domainkey.example.org']);
  });

  it('the lifecycle file reads back as it was written', () => {
    const keys: DkimKeyState[] = [
      { domain: 'example.org', selector: 'mail-20261123', algorithm: 'rsa', bits: 4096, status: 'signing' },
      { domain: 'example.org', selector: 'mail', algorithm: 'rsa', bits: 2048, status: 'retired', since: NOW },
    ];
    const text = lifecycleText(keys);
    expect(text).toBe(`# DKIM keys of this host, managed by mailops: domain selector algorithm bits status [retired-since]\nexample.org mail-20261123 rsa 4096 signing\nexample.org mail rsa 2048 retired ${NOW}\n`);
    expect(parseLifecycle(text.split('\n'))).toEqual(life(['mail-20261123', 'signing'], ['mail', 'retired', NOW]));
  });

  it('the state records each host’s keys with their lifecycle; the zone publishes signing, pending and retired keys; a deleted key leaves the state', () => {
    const s = site('rsa-2048', 2);
    const key = (selector: string, status: DkimKeyState['status'], since?: number) => ({ domain: 'example.org', selector, algorithm: 'rsa' as const, bits: 2048, status, ...(since ? { since } : {}), publicKey: `PUB${selector}` });
    let state = recordDkim(emptyState(), [
      { name: 'mx1', ok: true, changes: 1, dkim: [key('mail', 'signing'), key('mail-20261123', 'pending')] },
      { name: 'mx2', ok: true, changes: 1, dkim: [key('mail-2', 'signing')] },
    ], s);
    expect(publishedKeys(s, s.domains[0]!, state).map((k) => `${k.host} ${k.selector} ${k.status}`)).toEqual(['mx1 mail signing', 'mx2 mail-2 signing', 'mx1 mail-20261123 pending']);
    // The host's lifecycle from the state alone, as render and the first plan see it.
    expect(brief(stateDkim(s, host(s), state, NOW))).toEqual(['mail rsa-2048 signing', 'mail-20261123 rsa-2048 pending']);
    state = recordDkim(state, [{ name: 'mx1', ok: true, changes: 1, dkim: [key('mail-20261123', 'signing')] }], s);
    expect(Object.keys(state.dkim).sort()).toEqual(['mail-2._domainkey.example.org', 'mail-20261123._domainkey.example.org']);
    // A host the playbook no longer has: its keys are not published.
    state = recordDkim(state, [], site('rsa-2048', 1));
    expect(Object.keys(state.dkim)).toEqual(['mail-20261123._domainkey.example.org']);
  });
});

describe('DKIM fact: every key file of the directory and the lifecycle file', () => {
  it('lists each key with its domain and selector from the file name, and the lifecycle lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-dkimdir-'));
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(dir, 'mail.example.org.s-2.key')], { stdio: 'ignore' });
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, 'example.org.mail.key')], { stdio: 'ignore' });
    writeFileSync(join(dir, 'lifecycle'), lifecycleText([{ domain: 'example.org', selector: 'mail', algorithm: 'rsa', bits: 2048, status: 'retired', since: NOW }]));
    const fact = FAMILY_FACTS.find((f) => f.section === 'dkim')!;
    const d = { os: { paths: { dkimKeys: dir } }, dkimKeys: [] } as unknown as DesiredHost;
    const out = spawnSync('sh', ['-c', fact.command(d).join('\n')], { encoding: 'utf8' }).stdout;
    const facts = fact.parse(out.split('\n'), new Map());
    expect(Object.entries(facts.dkim!).map(([r, k]) => `${r} ${k.algorithm} ${k.bits}`).sort()).toEqual(['mail._domainkey.example.org rsa 2048', 's-2._domainkey.mail.example.org ed25519 256']);
    expect(facts.dkimLifecycle).toEqual(life(['mail', 'retired', NOW]));
    // No directory: no keys and no lifecycle.
    const none = spawnSync('sh', ['-c', fact.command({ os: { paths: { dkimKeys: join(dir, 'nope') } } } as unknown as DesiredHost).join('\n')], { encoding: 'utf8' }).stdout;
    expect(fact.parse(none.split('\n'), new Map())).toEqual({ dkim: {} });
  });
});
