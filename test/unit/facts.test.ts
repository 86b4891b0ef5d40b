import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dkimFromSpki, parseFacts, parseServices, parseSha256, parseStat, parsePackages } from '../../src/facts/parse.js';
import { factScript } from '../../src/facts/script.js';
import { cachedDpkgQuery, cachedUnitFiles, cachedUnitStates, fileSnapshot, snapshotWrite } from '../../src/facts/host-facts.js';
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

  it('joins what list-units and list-unit-files say of each unit (and show of a template instance)', () => {
    // As systemd 252 prints them with --plain --no-legend --full; a unit in neither is absent (plan: not-found, inactive).
    const units = [
      'exim4.service            not-found inactive dead    exim4.service',
      'fail2ban.service         loaded    failed   failed  Fail2Ban Service',
      'mailops-firewall.service loaded    active   exited  mailops inbound firewall',
      'postsrsd.service         masked    inactive dead    postsrsd.service',
      'mailops-replica.timer    loaded    active   waiting mailops: heal the replicas',
      'Id=getty@tty1.service',
      'ActiveState=active',
      'UnitFileState=enabled',
    ];
    const files = ['fail2ban.service         enabled  enabled', 'mailops-firewall.service enabled  enabled', 'postsrsd.service         masked   enabled', 'mailops-replica.timer    enabled  enabled', 'exim4-base.service       generated -', 'opendkim.service         disabled enabled'];
    expect(parseServices(units, files)).toEqual({
      exim4: { enabled: 'not-found', active: 'inactive' },
      fail2ban: { enabled: 'enabled', active: 'failed' },
      'mailops-firewall': { enabled: 'enabled', active: 'active' },
      postsrsd: { enabled: 'masked', active: 'inactive' },
      'mailops-replica.timer': { enabled: 'enabled', active: 'active' },
      'getty@tty1': { enabled: 'enabled', active: 'active' },
      'exim4-base': { enabled: 'generated', active: 'inactive' },
      opendkim: { enabled: 'disabled', active: 'inactive' },
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
    // The script's output is gathered in $(...), closed here where the family part would begin.
    const detection = `${script.slice(0, script.indexOf('case "$family" in'))})\nprintf '%s\\n' "$facts"`.replaceAll('/etc/os-release', join(dir, 'os-release'));
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

  it('asks whether a run holds the apply lock only while a journal has no result: then that run is running, not interrupted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-lock-'));
    mkdirSync(join(dir, 'runs', '20261123T100000-a'), { recursive: true });
    writeFileSync(join(dir, 'runs', '20261123T100000-a', 'journal'), 'ok\n');
    writeFileSync(join(dir, 'lock'), '');
    const facts = () => parseFacts(spawnSync('sh', ['-c', script.replaceAll('/var/lib/mailops', dir)], { encoding: 'utf8' }).stdout);
    // A run holds the lock (flock, as the activation does) and has written its journal: running.
    const holder = spawnSync('sh', ['-c', `flock ${join(dir, 'lock')} sleep 30 >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).stdout.trim();
    try {
      mkdirSync(join(dir, 'runs', '20261123T110000-b'));
      writeFileSync(join(dir, 'runs', '20261123T110000-b', 'journal'), 'swapping\n');
      for (let i = 0; i < 50 && facts().locked === false; i++) spawnSync('sleep', ['0.1']);
      expect(facts()).toMatchObject({ locked: true, interrupted: [] });
    } finally {
      spawnSync('sh', ['-c', `pkill -P ${holder}; kill ${holder}`]);
    }
    // Nobody holds it: the run was killed on the way.
    for (let i = 0; i < 50 && facts().locked === true; i++) spawnSync('sleep', ['0.1']);
    expect(facts()).toMatchObject({ locked: false, interrupted: [{ run: '20261123T110000-b', phase: 'swapping' }] });
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

  it("reads every DKIM key of the directory with the managed files' hashes: from the cache by its hash, else from openssl", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-dkim-'));
    const keys = join(dir, 'keys');
    const state = join(dir, 'state');
    mkdirSync(keys);
    mkdirSync(join(state, 'dkim-public'), { recursive: true });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const ed = generateKeyPairSync('ed25519');
    writeFileSync(join(keys, 'example.test.mail.key'), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(keys, 'example.test.ed.key'), ed.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(keys, 'lifecycle'), 'x\n');
    const spki = (k: KeyObject) => (k.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64');
    // The activation cached the Ed25519 key's public half (by the key file's SHA-256); the RSA key has none.
    const sha = createHash('sha256').update(readFileSync(join(keys, 'example.test.ed.key'))).digest('hex');
    writeFileSync(join(state, 'dkim-public', sha), `${spki(ed.publicKey)}\n`);
    const r = spawnSync('sh', ['-c', script.replaceAll(deb.os.paths.dkimKeys, keys).replaceAll('/var/lib/mailops', state)], { encoding: 'utf8' });
    const f = parseFacts(r.stdout);
    expect(f.dkim).toEqual({
      'mail._domainkey.example.test': { selector: 'mail', ...dkimFromSpki(spki(rsa.publicKey)) },
      'ed._domainkey.example.test': { selector: 'ed', ...dkimFromSpki(spki(ed.publicKey)) },
    });
    // The keys' hashes came with the files' (one sha256sum).
    expect(f.dkim['mail._domainkey.example.test']).toMatchObject({ algorithm: 'rsa', bits: 1024 });
    // And their owners with the managed files' (one stat), for the guard of the command that gives them to the MTA's group.
    expect(Object.keys(f.directories).filter((p) => p.endsWith('.key')).sort()).toEqual([join(keys, 'example.test.ed.key'), join(keys, 'example.test.mail.key')]);
    expect(r.stdout.match(/^[0-9a-f]{64} {2}.*\.key$/gm)?.length).toBe(2);
  });

  describe("dpkg-query's answer, kept while the package database is the same file", () => {
    const status = (postfix: string) =>
      ['postfix', 'openssl'].map((p) => `Package: ${p}\nStatus: install ok installed\nVersion: ${p === 'postfix' ? postfix : '3.0.15-1~deb12u1'}\nArchitecture: amd64\nMaintainer: x <x@example.test>\nDescription: ${p}\n`).join('\n');
    /** A dpkg database and a managed host's state directory; `run` runs the packages fact there, counting dpkg-query's runs. */
    function host(managed = true) {
      const dir = mkdtempSync(join(tmpdir(), 'mailops-dpkg-'));
      const admin = join(dir, 'dpkg');
      mkdirSync(join(admin, 'updates'), { recursive: true });
      writeFileSync(join(admin, 'status'), status('3.7.11-0+deb12u1'));
      if (managed) mkdirSync(join(dir, 'mailops'));
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      const real = spawnSync('sh', ['-c', 'command -v dpkg-query'], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(join(bin, 'dpkg-query'), `#!/bin/sh\necho x >> ${join(dir, 'calls')}\nexec ${real} "$@"\n`, { mode: 0o755 });
      const cache = join(dir, 'mailops', 'facts');
      const calls = () => (existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').split('\n').length - 1 : 0);
      const run = (packages = ['postfix', 'openssl']) => {
        const r = spawnSync('sh', ['-c', cachedDpkgQuery(packages, { admindir: admin, cache }).join('\n')], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        return parsePackages(r.stdout.split('\n'));
      };
      /** dpkg's way of changing its database: a new file renamed over the old one. */
      const change = (postfix: string) => {
        writeFileSync(join(admin, 'status-new'), status(postfix));
        renameSync(join(admin, 'status-new'), join(admin, 'status'));
      };
      return { dir, admin, cache, calls, run, change };
    }
    const both = (postfix: string) => ({ postfix, openssl: '3.0.15-1~deb12u1' });

    it('answers from the cache once it holds the answer for this very status file, and asks again once dpkg changed it', () => {
      const h = host();
      expect(h.run()).toEqual(both('3.7.11-0+deb12u1'));
      expect(h.calls()).toBe(1);
      expect(h.run()).toEqual(both('3.7.11-0+deb12u1'));
      expect(h.run()).toEqual(both('3.7.11-0+deb12u1'));
      expect(h.calls()).toBe(1);
      h.change('3.7.12-0+deb12u1');
      expect(h.run()).toEqual(both('3.7.12-0+deb12u1'));
      expect(h.calls()).toBe(2);
      expect(h.run()).toEqual(both('3.7.12-0+deb12u1'));
      expect(h.calls()).toBe(2);
      // One answer is kept (the pointer and its directory), its link the status file itself.
      expect(readdirSync(h.cache).sort()).toEqual(['dpkg', readFileSync(join(h.cache, 'dpkg'), 'utf8').trim().split(' ')[1]].sort());
    });

    it('asks dpkg-query while dpkg has changes not yet in the status file (updates/), and for other packages', () => {
      const h = host();
      h.run();
      writeFileSync(join(h.admin, 'updates', '0000'), 'Package: postfix\nStatus: deinstall ok config-files\nVersion: 3.7.11-0+deb12u1\n');
      h.run();
      h.run();
      expect(h.calls()).toBe(3);
      rmSync(join(h.admin, 'updates', '0000'));
      expect(h.run(['postfix'])).toEqual({ postfix: '3.7.11-0+deb12u1' });
      expect(h.calls()).toBe(4);
    });

    it('asks dpkg-query when the cached answer is gone, and writes nothing on a host mailops does not manage', () => {
      const h = host();
      h.run();
      rmSync(join(h.cache, readFileSync(join(h.cache, 'dpkg'), 'utf8').trim().split(' ')[1]!), { recursive: true });
      expect(h.run()).toEqual(both('3.7.11-0+deb12u1'));
      expect(h.calls()).toBe(2);
      const fresh = host(false);
      expect(fresh.run()).toEqual(both('3.7.11-0+deb12u1'));
      expect(fresh.run()).toEqual(both('3.7.11-0+deb12u1'));
      expect(fresh.calls()).toBe(2);
      expect(existsSync(join(fresh.dir, 'mailops'))).toBe(false);
    });
  });

  describe("systemctl list-unit-files' answer, kept while nothing it is read from changed", () => {
    /**
     * A unit search path of two directories (one with a .wants directory) and a third not made yet, a boot
     * id, and a managed host's state directory; systemctl is a stand-in that answers from the directories
     * (enabled: linked from a .wants directory; masked: a link to /dev/null) and counts its runs. All of it
     * was last changed an hour ago.
     */
    function host(managed = true) {
      const dir = mkdtempSync(join(tmpdir(), 'mailops-units-'));
      const etc = join(dir, 'etc');
      const lib = join(dir, 'lib');
      const later = join(dir, 'run', 'system');
      const transient = join(dir, 'transient');
      mkdirSync(join(etc, 'multi-user.target.wants'), { recursive: true });
      mkdirSync(transient);
      mkdirSync(lib);
      mkdirSync(join(dir, 'run'));
      for (const u of ['postfix.service', 'dovecot.service']) writeFileSync(join(lib, u), '[Unit]\n[Install]\nWantedBy=multi-user.target\n');
      symlinkSync(join(lib, 'postfix.service'), join(etc, 'multi-user.target.wants', 'postfix.service'));
      writeFileSync(join(dir, 'boot_id'), 'c828ed6d-291e-428f-8ad3-e7fa8e0e27a5\n');
      if (managed) mkdirSync(join(dir, 'mailops'));
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(
        join(bin, 'systemctl'),
        `#!/bin/sh\necho x >> ${join(dir, 'calls')}\n[ -e ${join(dir, 'fail')} ] && exit 1\nshift 4\nn=0\nfor u in "$@"; do\n  if [ -L ${etc}/"$u" ]; then echo "$u masked enabled"; n=1\n  elif [ -e ${lib}/"$u" ]; then if [ -e ${etc}/multi-user.target.wants/"$u" ]; then echo "$u enabled enabled"; else echo "$u disabled enabled"; fi; n=1; fi\ndone\n[ $n = 1 ]\n`,
        { mode: 0o755 },
      );
      const hourAgo = Date.now() / 1000 - 3600;
      for (const p of [etc, join(etc, 'multi-user.target.wants'), lib, join(lib, 'postfix.service'), join(lib, 'dovecot.service'), join(dir, 'run')]) utimesSync(p, hourAgo, hourAgo);
      const cache = join(dir, 'mailops', 'facts');
      const calls = () => (existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').split('\n').length - 1 : 0);
      const run = (units = ['postfix.service', 'dovecot.service']) => {
        const script = cachedUnitFiles(units, { cache, paths: [transient, etc, later, lib], transient, bootId: join(dir, 'boot_id') }).join('\n');
        const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        return parseServices([], r.stdout.split('\n'));
      };
      return { dir, etc, lib, later, transient, cache, calls, run };
    }
    const states = (postfix: string, dovecot: string) => ({ postfix: { enabled: postfix, active: 'inactive' }, dovecot: { enabled: dovecot, active: 'inactive' } });

    it('answers from the cache while the directories and unit files are older than the answer, and asks again once one changed', () => {
      const h = host();
      expect(h.run()).toEqual(states('enabled', 'disabled'));
      expect(h.calls()).toBe(1);
      expect(h.run()).toEqual(states('enabled', 'disabled'));
      expect(h.run()).toEqual(states('enabled', 'disabled'));
      expect(h.calls()).toBe(1);
      // Enabled: a link made in a .wants directory.
      symlinkSync(join(h.lib, 'dovecot.service'), join(h.etc, 'multi-user.target.wants', 'dovecot.service'));
      expect(h.run()).toEqual(states('enabled', 'enabled'));
      expect(h.calls()).toBe(2);
      // Asked again while the change is less than two seconds older than the question.
      h.run();
      expect(h.calls()).toBe(3);
    });

    it("is not asked again for a login (its session's transient scope), only for a transient unit of the names asked", () => {
      const h = host();
      h.run();
      writeFileSync(join(h.transient, 'session-42.scope'), '[Scope]\n');
      h.run();
      expect(h.calls()).toBe(1);
      writeFileSync(join(h.transient, 'dovecot.service'), '[Service]\nExecStart=/bin/true\n');
      h.run();
      h.run();
      expect(h.calls()).toBe(3);
      rmSync(join(h.transient, 'dovecot.service'));
      h.run();
      expect(h.calls()).toBe(4);
    });

    it('sees a directory of the search path made, a unit masked, a unit file edited, another boot, another question', () => {
      const h = host();
      const settled = (): void => {
        // What was just made dates from an hour ago, as if the cache had been asked long after it.
        const hourAgo = Date.now() / 1000 - 3600;
        for (const p of [h.etc, join(h.etc, 'multi-user.target.wants'), h.lib, join(h.lib, 'postfix.service'), join(h.lib, 'dovecot.service'), join(h.dir, 'run')]) utimesSync(p, hourAgo, hourAgo);
        if (existsSync(h.later)) utimesSync(h.later, hourAgo, hourAgo);
        rmSync(join(h.cache, 'units'), { force: true });
        h.run();
      };
      h.run();
      h.run();
      expect(h.calls()).toBe(1);
      // A directory of the search path that did not exist: its making changes its parent.
      mkdirSync(h.later);
      h.run();
      expect(h.calls()).toBe(2);
      settled();
      expect(h.calls()).toBe(3);
      h.run();
      expect(h.calls()).toBe(3);
      // Masked: a link in the first directory.
      symlinkSync('/dev/null', join(h.etc, 'dovecot.service'));
      expect(h.run()).toEqual(states('enabled', 'masked'));
      expect(h.calls()).toBe(4);
      settled();
      // A unit file edited in place.
      writeFileSync(join(h.lib, 'postfix.service'), '[Unit]\nDescription=edited\n[Install]\nWantedBy=multi-user.target\n');
      h.run();
      expect(h.calls()).toBe(6);
      // Another boot.
      utimesSync(join(h.lib, 'postfix.service'), 0, Date.now() / 1000 - 3600);
      settled();
      h.run();
      expect(h.calls()).toBe(7);
      writeFileSync(join(h.dir, 'boot_id'), '0f1e2d3c-291e-428f-8ad3-e7fa8e0e27a5\n');
      h.run();
      expect(h.calls()).toBe(8);
      // Other units.
      expect(h.run(['postfix.service'])).toEqual({ postfix: { enabled: 'enabled', active: 'inactive' } });
      expect(h.calls()).toBe(9);
    });

    it('keeps no failed answer, survives a damaged cache file, and writes nothing on a host mailops does not manage', () => {
      const h = host();
      writeFileSync(join(h.dir, 'fail'), '');
      h.run();
      h.run();
      expect(h.calls()).toBe(2);
      expect(existsSync(join(h.cache, 'units'))).toBe(false);
      rmSync(join(h.dir, 'fail'));
      h.run();
      expect(h.calls()).toBe(3);
      const kept = readFileSync(join(h.cache, 'units'), 'utf8');
      // Cut short in the middle of the answer, its modification time kept: read, refused, asked again.
      const { mtime } = statSync(join(h.cache, 'units'));
      writeFileSync(join(h.cache, 'units'), kept.slice(0, kept.indexOf('uo=') + 10));
      utimesSync(join(h.cache, 'units'), mtime, mtime);
      expect(h.run()).toEqual(states('enabled', 'disabled'));
      expect(h.calls()).toBe(4);
      const fresh = host(false);
      fresh.run();
      fresh.run();
      expect(fresh.calls()).toBe(2);
      expect(existsSync(join(fresh.dir, 'mailops'))).toBe(false);
    });
  });

  describe("the units' states, kept while no service started or stopped", () => {
    /**
     * A unit search path of one directory, a boot id, a managed host's state directory, and systemd's
     * /run/systemd/units: `start` and `stop` change the states as systemd does (the unit's invocation link
     * made or removed). systemctl is a stand-in that answers list-unit-files and list-units from them and
     * counts its runs of each. All of it was last changed an hour ago.
     */
    function host() {
      const dir = mkdtempSync(join(tmpdir(), 'mailops-states-'));
      const lib = join(dir, 'lib');
      const units = join(dir, 'units');
      const active = join(dir, 'active');
      for (const d of [lib, units, active, join(dir, 'transient'), join(dir, 'mailops')]) mkdirSync(d);
      for (const u of ['postfix.service', 'dovecot.service']) writeFileSync(join(lib, u), '[Unit]\n');
      writeFileSync(join(dir, 'boot_id'), 'c828ed6d-291e-428f-8ad3-e7fa8e0e27a5\n');
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(
        join(bin, 'systemctl'),
        [
          '#!/bin/sh',
          `echo "$1" >> ${join(dir, 'calls')}`,
          `if [ "$1" = list-unit-files ]; then shift 4; for u in "$@"; do [ -e ${lib}/"$u" ] && echo "$u enabled enabled"; done; exit 0; fi`,
          `shift 5; for u in "$@"; do [ -e ${lib}/"$u" ] || [ -e ${active}/"$u" ] || continue; s=inactive; [ -e ${active}/"$u" ] && read -r s < ${active}/"$u"; echo "$u loaded $s running $u"; done`,
        ].join('\n'),
        { mode: 0o755 },
      );
      const hourAgo = Date.now() / 1000 - 3600;
      const age = () => {
        for (const p of [lib, units, join(lib, 'postfix.service'), join(lib, 'dovecot.service')]) if (existsSync(p)) utimesSync(p, hourAgo, hourAgo);
      };
      age();
      const cache = join(dir, 'mailops', 'facts');
      const calls = (what: string) => (existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').split('\n').filter((l) => l === what).length : 0);
      /** As systemd does: the state, and the invocation's link made (start) or removed (stop, failure). */
      const set = (unit: string, state: 'active' | 'failed' | 'inactive') => {
        if (state === 'inactive') rmSync(join(active, unit), { force: true });
        else writeFileSync(join(active, unit), `${state}\n`);
        if (state === 'active') writeFileSync(join(units, `invocation:${unit}`), '');
        else rmSync(join(units, `invocation:${unit}`), { force: true });
      };
      const run = (named = ['postfix.service', 'dovecot.service']) => {
        const script = [...cachedUnitFiles(named, { cache, paths: [lib], transient: join(dir, 'transient'), bootId: join(dir, 'boot_id') }), 'echo @@states', ...cachedUnitStates(named, [], { cache, units })].join('\n');
        const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        const [files, states] = r.stdout.split('@@states\n');
        return parseServices(states!.split('\n'), files!.split('\n'));
      };
      return { dir, lib, cache, calls, set, age, run };
    }
    const up = (postfix: string, dovecot: string) => ({ postfix: { enabled: 'enabled', active: postfix }, dovecot: { enabled: 'enabled', active: dovecot } });

    it('answers from the kept states while no service started or stopped, and asks again after a stop, a start, a failure', () => {
      const h = host();
      h.set('postfix.service', 'active');
      h.age();
      expect(h.run()).toEqual(up('active', 'inactive'));
      expect(h.calls('list-units')).toBe(1);
      expect(h.run()).toEqual(up('active', 'inactive'));
      expect(h.run()).toEqual(up('active', 'inactive'));
      expect(h.calls('list-units')).toBe(1);
      h.set('postfix.service', 'inactive');
      expect(h.run()).toEqual(up('inactive', 'inactive'));
      expect(h.calls('list-units')).toBe(2);
      // Asked again while the change is less than two seconds older than the question.
      h.run();
      expect(h.calls('list-units')).toBe(3);
      // That last answer came after the stop: kept.
      h.age();
      h.run();
      h.run();
      expect(h.calls('list-units')).toBe(3);
      h.set('dovecot.service', 'active');
      expect(h.run()).toEqual(up('inactive', 'active'));
      expect(h.calls('list-units')).toBe(4);
      h.set('dovecot.service', 'failed');
      expect(h.run()).toEqual(up('inactive', 'failed'));
      expect(h.calls('list-units')).toBe(5);
      // A failed unit is not kept: reset-failed changes its state and removes no link. (Without the answer
      // kept before, and the failure long past.)
      rmSync(join(h.cache, 'states'));
      h.age();
      expect(h.run()).toEqual(up('inactive', 'failed'));
      expect(h.run()).toEqual(up('inactive', 'failed'));
      expect(h.calls('list-units')).toBe(7);
      expect(existsSync(join(h.cache, 'states'))).toBe(false);
      h.set('dovecot.service', 'inactive');
      expect(h.run()).toEqual(up('inactive', 'inactive'));
      expect(h.calls('list-units')).toBe(8);
    });

    it('asks again once the unit files changed, and each time for a unit whose start it cannot see (a timer with a unit file)', () => {
      const h = host();
      h.run();
      h.run();
      expect(h.calls('list-units')).toBe(1);
      writeFileSync(join(h.lib, 'postfix.service'), '[Unit]\nDescription=edited\n');
      h.run();
      expect(h.calls('list-units')).toBe(2);
      h.age();
      // A timer without a unit file cannot start until one is made: kept.
      h.run(['postfix.service', 'dovecot.service', 'replica.timer']);
      h.run(['postfix.service', 'dovecot.service', 'replica.timer']);
      expect(h.calls('list-units')).toBe(3);
      // Once it has one, its states are never kept (the kept ones were kept with the unit files' answer
      // that had none).
      writeFileSync(join(h.lib, 'replica.timer'), '[Timer]\n');
      h.run(['postfix.service', 'dovecot.service', 'replica.timer']);
      expect(h.calls('list-units')).toBe(4);
      h.age();
      utimesSync(join(h.lib, 'replica.timer'), Date.now() / 1000 - 3600, Date.now() / 1000 - 3600);
      h.run(['postfix.service', 'dovecot.service', 'replica.timer']);
      h.run(['postfix.service', 'dovecot.service', 'replica.timer']);
      expect(h.calls('list-unit-files')).toBe(4);
      expect(h.calls('list-units')).toBe(6);
    });
  });

  describe('the snapshot of the files it reads, kept while their stat data is the same', () => {
    /**
     * Two managed files, a DKIM key directory (a glob), a managed directory, a file a cached fact reads line
     * by line (users), and a managed host's state directory. sha256sum is a stand-in that counts its runs
     * and hashes as the real one does; `date` answers a minute ahead, unless told the time (`now`).
     */
    function host(o: { managed?: boolean; now?: boolean } = {}) {
      const dir = mkdtempSync(join(tmpdir(), 'mailops-snapshot-'));
      const etc = join(dir, 'etc');
      mkdirSync(join(etc, 'keys'), { recursive: true });
      mkdirSync(join(dir, 'vmail'));
      writeFileSync(join(etc, 'main.cf'), 'myhostname = mx1.example.com\n');
      writeFileSync(join(etc, 'users'), 'ann:{SHA512-CRYPT}x\n');
      writeFileSync(join(etc, 'keys', 'example.com.mail.key'), 'key one\n');
      writeFileSync(join(etc, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\nvmail:x:5000:5000::/var/vmail:/usr/sbin/nologin\n');
      if (o.managed !== false) mkdirSync(join(dir, 'mailops'));
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      const real = spawnSync('sh', ['-c', 'command -v sha256sum'], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(join(bin, 'sha256sum'), `#!/bin/sh\necho x >> ${join(dir, 'calls')}\nexec ${real} "$@"\n`, { mode: 0o755 });
      if (!o.now) writeFileSync(join(bin, 'date'), `#!/bin/sh\necho $(( $(${spawnSync('sh', ['-c', 'command -v date'], { encoding: 'utf8' }).stdout.trim()} +%s) + 60 ))\n`, { mode: 0o755 });
      const cache = join(dir, 'mailops', 'facts');
      const files = [join(etc, 'main.cf'), join(etc, 'users')];
      const calls = () => (existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').split('\n').length - 1 : 0);
      const run = (extra: { paths?: string[]; key?: string; veto?: boolean } = {}) => {
        const keys = `'${join(etc, 'keys')}'/*.key`;
        const paths = [...files.map((f) => `'${f}'`), keys, `'${join(etc, 'passwd')}'`, `'${join(dir, 'vmail')}'`, ...(extra.paths ?? [])];
        const script = [
          ...fileSnapshot(paths, extra.key ?? '0123456789abcdef', { cache }),
          `if [ -n "$sn_hit" ]; then H=$xh; else H=$(sha256sum -- ${files.map((f) => `'${f}'`).join(' ')} ${keys} 2>/dev/null); fi; xh=$H; printf '%s\\n' "$H"`,
          `echo @@stat; printf '%s\\n' "$sn_s"`,
          `echo @@users; if [ -z "$sn_hit" ]; then xu=$(`,
          `while IFS= read -r l; do case "$l" in vmail:*) printf '%s\\n' "$l";; esac; done < '${join(etc, 'passwd')}'${extra.veto ? '; false' : ''}`,
          `) || sn_nc=1; fi; printf '%s\\n' "$xu"`,
          ...snapshotWrite(['xh', 'xu'], { cache }),
        ].join('\n');
        const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        const [hashes, rest] = r.stdout.split('@@stat\n');
        const [stat, users] = rest!.split('@@users\n');
        return { hashes: parseSha256(hashes!.split('\n')), stat: parseStat(stat!.split('\n')), users: users!.trim() };
      };
      return { dir, etc, cache, calls, run };
    }
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');

    it('hashes and reads nothing while every file has the stat data it had, and sees a file written, its mode changed, a key added', () => {
      const h = host();
      const first = h.run();
      expect(first.hashes[join(h.etc, 'main.cf')]).toBe(sha('myhostname = mx1.example.com\n'));
      expect(first.hashes[join(h.etc, 'keys', 'example.com.mail.key')]).toBe(sha('key one\n'));
      expect(first.users).toBe('vmail:x:5000:5000::/var/vmail:/usr/sbin/nologin');
      expect(first.stat[join(h.dir, 'vmail')]?.mode).toMatch(/^0?7[0-7]{2}$/);
      expect(h.calls()).toBe(1);
      expect(existsSync(join(h.cache, 'snapshot'))).toBe(true);
      expect(h.run()).toEqual(first);
      expect(h.run()).toEqual(first);
      expect(h.calls()).toBe(1);
      // The same size, the modification time put back: the change time tells.
      const { atime, mtime } = statSync(join(h.etc, 'main.cf'));
      writeFileSync(join(h.etc, 'main.cf'), 'myhostname = mx2.example.com\n');
      utimesSync(join(h.etc, 'main.cf'), atime, mtime);
      expect(h.run().hashes[join(h.etc, 'main.cf')]).toBe(sha('myhostname = mx2.example.com\n'));
      expect(h.calls()).toBe(2);
      h.run();
      expect(h.calls()).toBe(2);
      spawnSync('chmod', ['600', join(h.etc, 'users')]);
      expect(h.run().stat[join(h.etc, 'users')]?.mode).toBe('0600');
      expect(h.calls()).toBe(3);
      writeFileSync(join(h.etc, 'keys', 'example.com.mail2.key'), 'key two\n');
      expect(h.run().hashes[join(h.etc, 'keys', 'example.com.mail2.key')]).toBe(sha('key two\n'));
      expect(h.calls()).toBe(4);
      // A file a cached fact reads.
      writeFileSync(join(h.etc, 'passwd'), 'vmail:x:5001:5001::/var/vmail:/usr/sbin/nologin\n');
      expect(h.run().users).toBe('vmail:x:5001:5001::/var/vmail:/usr/sbin/nologin');
      expect(h.calls()).toBe(5);
      expect(h.run().users).toBe('vmail:x:5001:5001::/var/vmail:/usr/sbin/nologin');
      expect(h.calls()).toBe(5);
      // A file removed, another question.
      rmSync(join(h.etc, 'users'));
      expect(h.run().hashes[join(h.etc, 'users')]).toBeUndefined();
      expect(h.calls()).toBe(6);
      h.run({ key: 'fedcba9876543210' });
      expect(h.calls()).toBe(7);
    });

    it('is not written for files changed less than five seconds ago, a symlink, or a fact that read elsewhere', () => {
      const young = host({ now: true });
      young.run();
      young.run();
      expect(young.calls()).toBe(2);
      expect(existsSync(join(young.cache, 'snapshot'))).toBe(false);
      const linked = host();
      symlinkSync(join(linked.etc, 'main.cf'), join(linked.etc, 'link.cf'));
      linked.run({ paths: [`'${join(linked.etc, 'link.cf')}'`] });
      linked.run({ paths: [`'${join(linked.etc, 'link.cf')}'`] });
      expect(linked.calls()).toBe(2);
      expect(existsSync(join(linked.cache, 'snapshot'))).toBe(false);
      const vetoed = host();
      vetoed.run({ veto: true });
      vetoed.run({ veto: true });
      expect(vetoed.calls()).toBe(2);
      expect(existsSync(join(vetoed.cache, 'snapshot'))).toBe(false);
    });

    it('survives a damaged snapshot, and writes nothing on a host mailops does not manage', () => {
      const h = host();
      const first = h.run();
      const kept = readFileSync(join(h.cache, 'snapshot'), 'utf8');
      writeFileSync(join(h.cache, 'snapshot'), kept.slice(0, kept.indexOf("xh='") + 20));
      expect(h.run()).toEqual(first);
      expect(h.calls()).toBe(2);
      expect(h.run()).toEqual(first);
      expect(h.calls()).toBe(2);
      const fresh = host({ managed: false });
      fresh.run();
      fresh.run();
      expect(fresh.calls()).toBe(2);
      expect(existsSync(join(fresh.dir, 'mailops'))).toBe(false);
    });
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
