/**
 * The no-op memo (src/apply/memo.ts): its key takes every input of the render, and no secret in plain
 * text; an entry is kept only for a plan that stays empty while it is used; the file keeps the entries of
 * other runs, is the user's alone, and a damaged one is no memo.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MEMO_SECONDS, memoFile, memoInputs, memoKey, openMemo, siteDigest, staysEmpty } from '../../src/apply/memo.js';
import type { MemoEntry } from '../../src/apply/memo.js';
import type { DkimPlan } from '../../src/plan/dkim.js';
import { plan } from '../../src/plan/plan.js';
import { resolveCredentials } from '../../src/render/credentials.js';
import { loadSite } from '../../src/site/load.js';
import { emptyState } from '../../src/state/state.js';
import { convergedFacts } from './support/facts.js';
import { RELAY_PASSWORD, render, site } from './support/hosts-site.js';

const now = Math.floor(Date.now() / 1000);
const signing: DkimPlan = { keys: [{ domain: 'example.com', selector: 'mail', algorithm: 'rsa', bits: 2048, status: 'signing' }], remove: [], notes: [] };

describe('an entry is kept only for a plan that stays empty for the hour it is used', () => {
  const [desired] = render(site());
  const cert = desired!.commands.findIndex((c) => c.certGuard);
  const guard = desired!.commands[cert]!.certGuard!;
  /** A converged host whose certificate is valid until `notAfter`: its certificate command is done only if the guard holds. */
  const facts = (notAfter: number) => ({
    ...convergedFacts(desired!),
    commandsDone: desired!.commands.map((_, i) => i).filter((i) => i !== cert),
    tlsCert: { names: guard.names, notBefore: now - 60, notAfter },
    gatheredAt: now,
  });

  it('a certificate valid for its guard a day longer than asked: kept', () => {
    const f = facts(now + (guard.days + 1) * 86400);
    expect(plan(desired!, f).changes).toEqual([]);
    expect(staysEmpty(desired!, f, signing, signing)).toBe(true);
  });

  it('a certificate the guard accepts now but not within the hour: not kept (the plan renews it then)', () => {
    const f = facts(now + guard.days * 86400 + MEMO_SECONDS / 2);
    expect(plan(desired!, f).changes).toEqual([]);
    expect(staysEmpty(desired!, f, signing, signing)).toBe(false);
  });

  it('a DKIM key pending or retired, one to remove, a note, or a lifecycle that moves within the hour: not kept', () => {
    const f = facts(now + 400 * 86400);
    const key = signing.keys[0]!;
    expect(staysEmpty(desired!, f, { ...signing, keys: [key, { ...key, selector: 'mail-2', status: 'pending' }] }, signing)).toBe(false);
    expect(staysEmpty(desired!, f, { ...signing, keys: [key, { ...key, selector: 'old', status: 'retired', since: now - 86400 }] }, signing)).toBe(false);
    expect(staysEmpty(desired!, f, { ...signing, remove: [{ ...key, selector: 'old' }] }, signing)).toBe(false);
    expect(staysEmpty(desired!, f, { ...signing, notes: ['DKIM mail._domainkey.example.com: ...'] }, signing)).toBe(false);
    expect(staysEmpty(desired!, f, signing, { ...signing, keys: [{ ...key, status: 'retired', since: now + MEMO_SECONDS }] })).toBe(false);
  });

  it('a plan with a change: not kept', () => {
    const f = { ...facts(now + 400 * 86400), services: {} };
    expect(plan(desired!, f).changes.length).toBeGreaterThan(0);
    expect(staysEmpty(desired!, f, signing, signing)).toBe(false);
  });
});

describe('the key: every input of the render, no secret in plain text', () => {
  const load = (file: string) => loadSite(file).site;
  const digest = (file: string, state = emptyState()) => {
    const s = load(file);
    return siteDigest(s, resolveCredentials(s), state);
  };

  it('the same inputs give the same key; another playbook, state, password or host another', () => {
    const file = site({ relayPort: 587 });
    const a = digest(file);
    expect(digest(file)).toBe(a);
    const s = load(file);
    expect(memoKey(a, s.hosts[0]!)).not.toBe(memoKey(a, { ...s.hosts[0]!, name: 'mx2' }));
    // Another alias.
    writeFileSync(file, readFileSync(file, 'utf8').replace('postmaster: alice', 'postmaster: bob'));
    const b = digest(file);
    expect(b).not.toBe(a);
    // Another state (a certificate recorded).
    expect(digest(file, { ...emptyState(), tls: { 'mx1.example.com': 'ab'.repeat(32) } })).not.toBe(b);
    // Another smarthost password, read from the environment.
    const before = process.env['UT_RELAY_PASSWORD'];
    process.env['UT_RELAY_PASSWORD'] = 'another one';
    try {
      expect(digest(file)).not.toBe(b);
    } finally {
      process.env['UT_RELAY_PASSWORD'] = before;
    }
    expect(digest(file)).toBe(b);
  });

  it('a mailbox password from the environment enters as the hash the host gets, the smarthost password as such a hash too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-memo-'));
    const file = join(dir, 'site.yaml');
    process.env['UT_MEMO_PASSWORD'] = 'first password';
    writeFileSync(file, readFileSync(site({ relayPort: 587 }), 'utf8').replace(/- \{ name: carol, password_hash: "[^"]+" \}/, '- { name: carol, password: { env: UT_MEMO_PASSWORD } }'));
    const a = digest(file);
    process.env['UT_MEMO_PASSWORD'] = 'second password';
    expect(digest(file)).not.toBe(a);
    // What the key is made of holds the hashes, never the passwords (a sha256 of them would be easy to try against).
    const s = load(file);
    const creds = resolveCredentials(s);
    expect([...creds.values()]).toContain(RELAY_PASSWORD);
    const material = memoInputs(s, creds, emptyState());
    expect(material).not.toContain(RELAY_PASSWORD);
    expect(material).not.toContain('second password');
    expect(material).toContain(creds.get('carol@other.example')!);
  });
});

describe('the memo file', () => {
  const entry = (key: string, until = now + 60): MemoEntry => ({
    key,
    script: 'echo facts',
    answer: 'ab'.repeat(32),
    until,
    platform: { family: 'debian', dovecot: '2.3' },
    plan: { host: 'mx1', family: 'debian', os: 'Debian GNU/Linux 12 (bookworm)', changes: [], warnings: [], ports: [25] },
    dkim: [],
  });
  const host = (name: string) => ({ name }) as Parameters<ReturnType<typeof openMemo>['find']>[0];

  it('is found in the cache directory, one per playbook, and not at all with MAILOPS_PLAN_MEMO=0', () => {
    expect(memoFile('/srv/site.yaml', { XDG_CACHE_HOME: '/c' })).toMatch(/^\/c\/mailops\/plans\/[0-9a-f]{24}\.json$/);
    expect(memoFile('/srv/site.yaml', { HOME: '/home/u' })).toMatch(/^\/home\/u\/\.cache\/mailops\/plans\//);
    expect(memoFile('/srv/site.yaml', { HOME: '/home/u' })).not.toBe(memoFile('/srv/other.yaml', { HOME: '/home/u' }));
    expect(memoFile('/srv/site.yaml', { HOME: '/home/u', MAILOPS_PLAN_MEMO: '0' })).toBeNull();
  });

  it('gives an entry for its key and while it is valid only; keeps the entries other runs wrote; is the user’s alone', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mailops-memo-')), 'plans', 'x.json');
    const a = openMemo(file);
    expect(a.find(host('mx1'), 'k1', now)).toBeUndefined();
    a.put(host('mx1'), entry('k1'));
    a.put(host('mx2'), entry('k2', now - 1));
    a.save();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    // Another run, opened before this one saved, writes its own host: both stay.
    const other = openMemo(file);
    const b = openMemo(file);
    b.put(host('mx3'), entry('k3'));
    b.save();
    other.put(host('mx1'), null);
    other.save();
    const c = openMemo(file);
    expect(c.find(host('mx1'), 'k1', now)).toBeUndefined();
    expect(c.find(host('mx2'), 'k2', now)).toBeUndefined(); // expired
    expect(c.find(host('mx3'), 'k3', now)?.script).toBe('echo facts');
    expect(c.find(host('mx3'), 'another key', now)).toBeUndefined();
    expect(c.find(host('mx3'), 'k3', now + 61)).toBeUndefined();
  });

  it('a damaged file is no memo, and is written anew', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mailops-memo-')), 'x.json');
    for (const junk of ['{', '[]', '{"version":2,"hosts":{"mx1":{}}}', '{"version":1,"hosts":{"mx1":{"key":"k1"}}}']) {
      writeFileSync(file, junk);
      expect(openMemo(file).find(host('mx1'), 'k1', now)).toBeUndefined();
    }
    const m = openMemo(file);
    m.put(host('mx1'), entry('k1'));
    m.save();
    expect(openMemo(file).find(host('mx1'), 'k1', now)?.key).toBe('k1');
  });
});
