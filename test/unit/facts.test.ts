import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFacts, parseServices, parseSha256, parseStat, parsePackages } from '../../src/facts/parse.js';
import { factScript } from '../../src/facts/script.js';
import { loadSite } from '../../src/site/load.js';
import { renderHosts } from '../../src/render/site.js';
import { loadComponents } from '../../src/components/load.js';

const fixture = (n: string) => readFileSync(new URL(`../fixtures/facts/${n}`, import.meta.url), 'utf8');

describe('fact parsers on recorded outputs', () => {
  it('Debian 12, partly converged', () => {
    const f = parseFacts(fixture('debian12-partial.txt'));
    expect(f.family).toBe('debian');
    expect(f.osName).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(f.osVersion).toBe('12');
    expect(f.packages).toEqual({ postfix: '3.7.11-0+deb12u1', openssl: '3.0.15-1~deb12u1' }); // "rc" = removed, config left: not installed
    expect(f.files['/etc/postfix/main.cf']).toEqual({ sha256: '2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae', mode: '0644', owner: 'root', group: 'root' });
    expect(f.files['/etc/dovecot/users']?.group).toBe('dovecot');
    expect(f.directories['/var/vmail']).toEqual({ mode: '0750', owner: 'vmail', group: 'vmail' });
    expect(f.services).toEqual({ postfix: { enabled: 'enabled', active: 'active' }, dovecot: { enabled: 'not-found', active: 'inactive' } });
    expect(f.users['vmail']).toEqual({ uid: 5000, gid: 5000, home: '/var/vmail' });
    expect(f.groups['vmail']).toBe(5000);
    expect(f.dkim['mail._domainkey.example.com']).toEqual({ selector: 'mail', algorithm: 'rsa', bits: 2048, publicKey: 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1UWkUMxCHdBjLaO/vl3IsLNZGqfQwU0Jj/4jPMtmC+D1ed/FXmY+jErO5XnBNvPJGCXCeqeEmKVpB9cPp8jLjd7IraO2nNtF+adCwzHpLmR4CR7b1stO0SFVxqp2wHSQ1Urgx904Qdm/tIRK+gDT70cwyKt0SAmUgDZv+bv7z6qU2nW6ZTWs1RVZcFW6yrE2UV+Lm8etJpaBefkAq4AhD1uyHrVumpDaJkE7saWVISk6BBgMZzSP+ASfFoqrhNhWmdDrXRbLeA+/uNYQ/22cBp0fGBdqlIgIl0OQff0iFvfYV6T1pogQM7ZAC2jsppBaOblUCC+/Xp1buVqSZpNTlwIDAQAB' });
    expect(f.commandsDone).toEqual([0, 2]);
    expect(f.locked).toBe(false);
    expect(f.queues).toEqual({ postfix: 3 });
  });

  it('CentOS Stream 9 with the lock held', () => {
    const f = parseFacts(fixture('centos-stream9.txt'));
    expect(f.family).toBe('rhel');
    expect(f.osName).toBe('CentOS Stream 9');
    expect(f.locked).toBe(true);
    expect(f.packages['postfix']).toBe('3.5.25-1.el9');
    expect(f.files).toEqual({});
  });

  it('an unsupported OS has no family', () => {
    const f = parseFacts(fixture('alpine.txt'));
    expect(f.family).toBeNull();
    expect(f.osName).toBe('Alpine Linux v3.20');
  });

  it('refuses an output cut short', () => {
    expect(() => parseFacts(fixture('debian12-partial.txt').replace('@@mailops end', ''))).toThrow(/did not finish/);
  });

  it('parses the individual formats', () => {
    expect(parseSha256(['0'.repeat(64) + '  /a b/c', 'garbage'])).toEqual({ '/a b/c': '0'.repeat(64) });
    expect(parseStat(['/x\t600\troot\tmail'])).toEqual({ '/x': { mode: '0600', owner: 'root', group: 'mail' } });
    expect(parsePackages(['a\t1.0\tii ', 'b\t2.0\tun ', 'c\t\tii '])).toEqual({ a: '1.0' });
    expect(parseServices(['Id=a.service', 'ActiveState=failed', 'UnitFileState=disabled', '', 'Id=b.timer', 'ActiveState=active', 'UnitFileState=enabled'])).toEqual({
      a: { enabled: 'disabled', active: 'failed' },
      'b.timer': { enabled: 'enabled', active: 'active' },
    });
  });
});

describe('the fact script', () => {
  process.env['MAILOPS_BOB_PASSWORD'] = 'facts-test';
  const { site } = loadSite(new URL('../../playbooks/examples/contract.yaml', import.meta.url).pathname);
  const deb = renderHosts(site, { detectedOs: new Map([['mx1', 'debian']]) })[0]!;
  const rhel = renderHosts(site, { detectedOs: new Map([['mx1', 'rhel']]) })[0]!;
  const script = factScript({ debian: deb, rhel });

  it('is valid POSIX shell', () => {
    const r = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  /** The family /etc/os-release text names, read here without the script: ID, then ID_LIKE, in order. */
  function familyOf(osRelease: string): 'debian' | 'rhel' | null {
    const field = (k: string) => [...osRelease.matchAll(/^(\w+)=(.*)$/gm)].find((m) => m[1] === k)?.[2]?.replace(/^"(.*)"$/, '$1') ?? '';
    for (const id of `${field('ID')} ${field('ID_LIKE')}`.split(/\s+/).filter(Boolean)) {
      if (['debian', 'ubuntu'].includes(id)) return 'debian';
      if (['rhel', 'centos', 'fedora', 'rocky', 'almalinux'].includes(id)) return 'rhel';
    }
    return null;
  }

  /** The family the script's own detection finds in an os-release text (its first part, run against a copy). */
  function scriptFamily(osRelease: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-os-'));
    writeFileSync(join(dir, 'os-release'), osRelease);
    const detection = script.slice(0, script.indexOf('case "$family" in')).replaceAll('/etc/os-release', join(dir, 'os-release'));
    expect(detection).toContain('sec family');
    const r = spawnSync('sh', ['-c', detection], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return /^@@mailops family\n(\S+)$/m.exec(r.stdout)?.[1] ?? 'missing';
  }

  it('names the runs that started and never finished, from their journals, with the phase they reached', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-runs-'));
    const runs: Record<string, string | null> = { '20261123T100000-a': 'ok', '20261123T110000-b': 'swapping', '20261123T120000-c': 'rolled-back', '20261123T130000-d': null, '20261123T140000-e': 'done' };
    for (const [run, journal] of Object.entries(runs)) {
      mkdirSync(join(dir, 'runs', run), { recursive: true });
      if (journal) writeFileSync(join(dir, 'runs', run, 'journal'), `${journal}\n`);
    }
    const r = spawnSync('sh', ['-c', script.replaceAll('/var/lib/mailops', dir)], { encoding: 'utf8' });
    expect(parseFacts(r.stdout).interrupted).toEqual([
      { run: '20261123T110000-b', phase: 'swapping' },
      { run: '20261123T140000-e', phase: 'done' },
    ]);
    expect(parseFacts(r.stdout).locked).toBe(false);
  });

  it('counts the mail in the queues, flat and hashed, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-spool-'));
    const put = (path: string) => {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), 'x');
    };
    // Postfix: 2 active, 3 deferred at hash depths 1 and 2, 1 held, 1 in maildrop; an empty hash directory; files elsewhere.
    ['postfix/active/4F1A2', 'postfix/active/4F1A3', 'postfix/deferred/A/A1B2C', 'postfix/deferred/B/B7D8E', 'postfix/deferred/C/D/CD123', 'postfix/hold/99AB1', 'postfix/maildrop/77C01', 'postfix/pid/master.pid', 'postfix/etc/resolv.conf'].forEach(put);
    mkdirSync(join(dir, 'postfix/incoming/E'), { recursive: true });
    // Exim: a message is its -H and -D files, flat or split into input/X/.
    ['exim4/input/1tAbC-000001-AB-H', 'exim4/input/1tAbC-000001-AB-D', 'exim4/input/b/1tAbD-000002-CD-H', 'exim4/input/b/1tAbD-000002-CD-D', 'exim4/msglog/1tAbC-000001-AB'].forEach(put);
    const r = spawnSync('sh', ['-c', script.replaceAll('/var/spool/', `${dir}/`)], { encoding: 'utf8' });
    expect(parseFacts(r.stdout).queues).toEqual({ postfix: 7, exim: 2 });
  });

  it('runs here and reports this machine: its exact family and name', () => {
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    const f = parseFacts(r.stdout);
    const here = readFileSync('/etc/os-release', 'utf8');
    expect(f.family).toBe(familyOf(here));
    expect(f.osName).toBe(/^PRETTY_NAME="?([^"\n]*)"?$/m.exec(here)![1]);
  });

  it('finds the family each recorded fixture recorded, from the os-release of that host', () => {
    const recorded: Record<string, 'debian' | 'rhel' | null> = { 'debian12-partial.txt': 'debian', 'centos-stream9.txt': 'rhel', 'alpine.txt': null };
    expect(readdirSync(new URL('../fixtures/facts/', import.meta.url)).sort()).toEqual(Object.keys(recorded).sort());
    for (const [name, family] of Object.entries(recorded)) {
      const text = fixture(name);
      const osRelease = /@@mailops os\n([\s\S]*?)\n@@mailops /.exec(text)![1]!;
      expect(parseFacts(text).family, name).toBe(family);
      expect(scriptFamily(osRelease), name).toBe(family ?? 'unknown');
      expect(familyOf(osRelease), name).toBe(family);
    }
    // Derivatives name their parent in ID_LIKE.
    expect(scriptFamily('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n')).toBe('debian');
    expect(scriptFamily('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n')).toBe('rhel');
    expect(scriptFamily('NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n')).toBe('debian');
    expect(scriptFamily('NAME="openSUSE Leap"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\n')).toBe('unknown');
  });

  it('asks about every managed file, package and service of both families', () => {
    for (const d of [deb, rhel]) {
      for (const file of d.files) expect(script).toContain(file.path);
      for (const p of d.packages) expect(script).toContain(p);
    }
    expect(script).toMatch(/dpkg-query/);
    expect(script).toMatch(/rpm -q/);
  });
});

describe('the units the component playbooks name', () => {
  it('are named as the facts report them: a service without ".service" (systemctl show prints its Id, which plan looks up without it)', () => {
    const named: string[] = [];
    for (const c of loadComponents()) {
      for (const x of c.services ?? []) named.push(`${c.name}: ${x.unit}`);
      for (const x of c.replaces ?? []) named.push(`${c.name}: ${x.unit}`);
      for (const r of c.retire ?? []) for (const u of r.units ?? []) named.push(`${c.name}: ${u}`);
    }
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((n) => n.endsWith('.service'))).toEqual([]);
    // And a unit so named is found by plan: the parser keys it by its Id without the suffix.
    expect(Object.keys(parseServices(['Id=mailops-replica-push.service', 'ActiveState=active', 'UnitFileState=enabled', '', 'Id=mailops-replica.timer', 'ActiveState=active', 'UnitFileState=enabled']))).toEqual(['mailops-replica-push', 'mailops-replica.timer']);
  });
});
