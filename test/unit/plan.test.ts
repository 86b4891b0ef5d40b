/** The planner with plain data: facts in, changes out. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupGuardCommand, shqGlob } from '../../src/facts/shell.js';
import { parseStat } from '../../src/facts/parse.js';
import { describe, expect, it } from 'vitest';
import { groupGuardHolds, plan, sha256 } from '../../src/plan/plan.js';
import { activationScript, stagedFiles } from '../../src/apply/script.js';
import type { DesiredHost } from '../../src/model/desired.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { OsFamily } from '../../src/model/site.js';
import { loadSite } from '../../src/site/load.js';
import { renderHosts } from '../../src/render/site.js';
import { hostTextWanted } from '../../src/plan/diff.js';
import { formatPlan } from '../../src/cli/plan-output.js';

process.env['MAILOPS_BOB_PASSWORD'] = 'plan-test-password';
const file = new URL('../../playbooks/examples/contract.yaml', import.meta.url).pathname;
const OTHER_HASH = '{SHA512-CRYPT}$6$fedcba9876543210$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ./0123456789abcdefghijklmnopqrstu';

/** The password fields of a passwd-file's lines (each at least 20 characters long). */
const hashesOf = (text: string): string[] => {
  const hs = text.split('\n').filter(Boolean).map((l) => l.split(':')[1]!);
  expect(hs.length).toBeGreaterThan(0);
  for (const h of hs) expect(h.length).toBeGreaterThanOrEqual(20);
  return hs;
};

function desired(family: OsFamily): DesiredHost {
  const { site } = loadSite(file);
  return renderHosts(site, { detectedOs: new Map([['mx1', family]]) })[0]!;
}

const empty = (family: OsFamily): HostFacts => ({
  family,
  osName: family === 'debian' ? 'Debian GNU/Linux 12 (bookworm)' : 'CentOS Stream 9',
  osVersion: family === 'debian' ? '12' : '9',
  packages: {},
  files: {},
  directories: {},
  services: {},
  users: {},
  groups: {},
  dkim: {},
  commandsDone: [],
  locked: false,
  queues: {},
});

/** The facts of a host that already looks exactly like `d`. */
function converged(d: DesiredHost): HostFacts {
  const f = empty(d.os.family);
  for (const p of d.packages) f.packages[p] = '1.0';
  for (const u of d.users) f.users[u.name] = { uid: u.uid ?? 999, gid: u.uid ?? 999, home: u.home };
  for (const x of d.directories) f.directories[x.path] = { mode: x.mode, owner: x.owner, group: x.group };
  for (const x of d.files) f.files[x.path] = { sha256: sha256(x.content), mode: x.mode, owner: x.owner, group: x.group };
  for (const s of d.services) f.services[s.unit] = { enabled: 'enabled', active: 'active' };
  f.commandsDone = d.commands.map((_, i) => i);
  return f;
}

describe('a guard planned from the owners of files (groupGuardHolds)', () => {
  const facts = (stat: Record<string, string>) => ({ ...empty('debian'), directories: Object.fromEntries(Object.entries(stat).map(([p, group]) => [p, { mode: '0640', owner: 'root', group }])) });
  const g = (paths: string[], group = 'opendkim') => ({ paths, group });
  it('holds when every file a glob matches has the group, and when it matches none', () => {
    expect(groupGuardHolds(g(['/etc/dkimkeys/*.key']), facts({ '/etc/dkimkeys/a.mail.key': 'opendkim', '/etc/dkimkeys/b.mail.key': 'opendkim', '/etc/dkimkeys/lifecycle': 'root' }))).toBe(true);
    expect(groupGuardHolds(g(['/etc/dkimkeys/*.key']), facts({ '/etc/dkimkeys/a.mail.key': 'opendkim', '/etc/dkimkeys/b.mail.key': 'Debian-exim' }))).toBe(false);
    expect(groupGuardHolds(g(['/etc/dkimkeys/*.key']), facts({ '/etc/dkimkeys': 'root', '/etc/dkimkeys/lifecycle': 'root', '/etc/dkimkeys/sub/x.key': 'root', '/etc/dkimkeys/.hidden.key': 'root' }))).toBe(true);
  });
  it('does not hold for a named file that is missing or of another group', () => {
    expect(groupGuardHolds(g(['/etc/mailops/tls/mx.key'], 'Debian-exim'), facts({ '/etc/mailops/tls/mx.key': 'Debian-exim' }))).toBe(true);
    expect(groupGuardHolds(g(['/etc/mailops/tls/mx.key'], 'Debian-exim'), facts({ '/etc/mailops/tls/mx.key': 'root' }))).toBe(false);
    expect(groupGuardHolds(g(['/etc/mailops/tls/mx.key'], 'Debian-exim'), facts({}))).toBe(false);
    // Regular-expression characters in a path are themselves.
    expect(groupGuardHolds(g(['/etc/a+b/*.key']), facts({ '/etc/aab/x.key': 'root', '/etc/a+b/x.key': 'opendkim' }))).toBe(true);
  });
  it("says what the activation's shell test says, on real files (the test is made from the same guard)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-group-'));
    mkdirSync(join(dir, 'keys'));
    mkdirSync(join(dir, 'none'));
    writeFileSync(join(dir, 'keys', 'a.mail.key'), 'x');
    writeFileSync(join(dir, 'keys', 'b.mail.key'), 'x');
    const mine = spawnSync('stat', ['-c', '%G', dir], { encoding: 'utf8' }).stdout.trim();
    const guards = [
      g([`${dir}/keys/*.key`], mine),
      g([`${dir}/keys/*.key`], `${mine}-not`),
      g([`${dir}/none/*.key`], `${mine}-not`),
      g([`${dir}/keys/a.mail.key`, `${dir}/none/*.key`], mine),
      g([`${dir}/keys/missing.key`], mine),
    ];
    const held: boolean[] = [];
    for (const guard of guards) {
      const shell = spawnSync('sh', ['-c', `( ${groupGuardCommand(guard.paths, guard.group)} )`]).status === 0;
      // The facts' stat of the same paths, as the fact script runs it.
      const stat = spawnSync('sh', ['-c', `stat -c '%n\t%a\t%U\t%G' -- ${guard.paths.map(shqGlob).join(' ')} 2>/dev/null`], { encoding: 'utf8' }).stdout.split('\n');
      expect(groupGuardHolds(guard, { ...empty('debian'), directories: parseStat(stat) }), guard.paths.join(' ')).toBe(shell);
      held.push(shell);
    }
    expect(held).toEqual([true, false, true, true, false]);
  });
});

describe('plan', () => {
  for (const family of ['debian', 'rhel'] as const) {
    describe(family, () => {
      const d = desired(family);

      it('a fresh host needs everything: packages, users, directories, files, commands, services', () => {
        const p = plan(d, empty(family));
        const kinds = (k: string) => p.changes.filter((c) => c.kind === k);
        expect(kinds('package').map((c) => (c as { name: string }).name)).toEqual(d.packages);
        expect(kinds('user').length).toBe(d.users.length);
        expect(kinds('directory').length).toBe(d.directories.length);
        expect(kinds('file').length).toBe(d.files.length);
        expect(kinds('file').every((c) => (c as { action: string }).action === 'create')).toBe(true);
        // Every command but the ones whose guard holds of no files at all (the DKIM keys' group: no keys yet).
        expect(kinds('command').map((c) => (c as { name: string }).name)).toEqual(d.commands.filter((c) => !c.groupGuard?.paths.every((x) => x.includes('*'))).map((c) => c.name));
        for (const s of d.services) {
          expect(p.changes).toContainEqual(expect.objectContaining({ kind: 'service', action: 'enable', unit: s.unit }));
          expect(p.changes).toContainEqual(expect.objectContaining({ kind: 'service', action: 'start', unit: s.unit }));
        }
        expect(p.ports).toEqual(expect.arrayContaining([22, 25, 465, 587]));
      });

      it('a converged host needs nothing', () => {
        expect(plan(d, converged(d)).changes).toEqual([]);
      });

      it('an edited file is updated with a diff, and its service is reloaded or restarted once', () => {
        const target = d.files.find((f) => !f.secret && f.notify.length > 0) ?? d.files.find((f) => !f.secret)!;
        const facts = converged(d);
        const edited = target.content.replace(/\n/, '\n# a manual edit\n');
        facts.files[target.path] = { ...facts.files[target.path]!, sha256: sha256(edited), content: edited };
        const p = plan(d, facts);
        const fc = p.changes.find((c) => c.kind === 'file')!;
        expect(fc).toMatchObject({ kind: 'file', action: 'update', path: target.path });
        expect((fc as { diff: string }).diff).toMatch(/^-# a manual edit$/m);
        const handlers = p.changes.filter((c) => c.kind === 'service');
        expect(handlers.length).toBe(new Set(target.notify.map((n) => n.split(' ')[1])).size);
      });

      it('metadata drift is fixed without a content change or a restart', () => {
        const target = d.files[0]!;
        const facts = converged(d);
        facts.files[target.path] = { ...facts.files[target.path]!, mode: '0666', owner: 'nobody' };
        const p = plan(d, facts);
        expect(p.changes).toEqual([expect.objectContaining({ kind: 'file', action: 'metadata', path: target.path })]);
      });

      it('never shows the content of a secret file', () => {
        const secret = d.files.find((f) => f.secret);
        expect(secret, 'the Dovecot users file is secret').toBeDefined();
        const facts = converged(d);
        facts.files[secret!.path] = { ...facts.files[secret!.path]!, sha256: 'f'.repeat(64), content: 'alice@example.com:{SHA512-CRYPT}$6$old$hash' };
        const p = plan(d, facts);
        const fc = p.changes.find((c) => c.kind === 'file') as { path: string; diff: string };
        expect(fc.path).toBe(secret!.path);
        expect(fc.diff).toMatch(/secret/);
        expect(fc.diff).not.toMatch(/SHA512-CRYPT|\$6\$/);
        for (const h of hashesOf(secret!.content)) expect(JSON.stringify(p)).not.toContain(h);
      });

      it('shows per-mailbox changes of the secret users file, without any hash, in the text and the JSON', () => {
        const users = d.files.find((f) => f.secret && f.path.endsWith('/dovecot/users'));
        expect(users).toBeDefined();
        const facts = converged(d);
        // The host's file: alice had a 1G quota, bob another password, carol has been removed from the playbook since.
        const hostText =
          users!.content.replace('storage=2G', 'storage=1G').replace(/^(bob@example\.com:)[^:]+/m, (_, head: string) => `${head}${OTHER_HASH}`) +
          `carol@example.com:${OTHER_HASH}:5000:5000::/var/vmail/example.com/carol::\n`;
        facts.files[users!.path] = { ...facts.files[users!.path]!, sha256: sha256(hostText), content: hostText };
        const p = plan(d, facts);
        expect(p.changes.map((c) => c.kind)).toEqual(['file']); // Dovecot reads it at every login: no reload
        const fc = p.changes[0] as { path: string; action: string; diff: string };
        expect(fc).toMatchObject({ path: users!.path, action: 'update' });
        expect(fc.diff.split('\n')).toEqual([
          `--- ${users!.path} (secret: password hashes not shown; 3 mailboxes changed)`,
          '~ mailbox alice@example.com: quota 1G → 2G; password changed: no',
          '~ mailbox bob@example.com: password changed: yes',
          '- mailbox carol@example.com',
        ]);
        const printed = formatPlan(p);
        expect(printed).toContain('      ~ mailbox alice@example.com: quota 1G → 2G; password changed: no');
        const json = JSON.stringify(p);
        for (const h of [...hashesOf(users!.content), ...hashesOf(hostText)]) {
          expect(json).not.toContain(h);
          expect(printed).not.toContain(h);
        }
        expect(json + printed).not.toMatch(/\$6\$|CRYPT\}/);
      });

      it('a fresh host lists the mailboxes of the new users file, without their hashes', () => {
        const p = plan(d, empty(family));
        const fc = p.changes.find((c) => c.kind === 'file' && c.action !== 'remove' && c.secret) as { path: string; diff: string };
        expect(fc.diff.split('\n')).toEqual([`--- ${fc.path} (new, secret: password hashes not shown; 2 mailboxes)`, '+ mailbox alice@example.com (quota 2G)', '+ mailbox bob@example.com']);
      });

      it('asks for the host text of changed files the diffs use: not secret, or a secret passwd-file', () => {
        const facts = converged(d);
        const users = d.files.find((f) => f.secret)!;
        const mainCf = d.files.find((f) => f.path.endsWith('/main.cf'))!;
        for (const f of [users, mainCf]) facts.files[f.path] = { ...facts.files[f.path]!, sha256: 'f'.repeat(64) };
        expect(hostTextWanted(d, plan(d, facts)).sort()).toEqual([mainCf.path, users.path].sort());
        // A secret file that is not a passwd-file (a key, say) is never fetched.
        const keyFile = { ...mainCf, secret: true, content: '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n' };
        const d2 = { ...d, files: d.files.map((f) => (f === mainCf ? keyFile : f)) };
        expect(hostTextWanted(d2, plan(d2, facts))).toEqual([users.path]);
      });

      it('a stopped service is started; a disabled one enabled', () => {
        const s = d.services[0]!;
        const facts = converged(d);
        facts.services[s.unit] = { enabled: 'disabled', active: 'failed' };
        const p = plan(d, facts);
        expect(p.changes).toEqual([
          expect.objectContaining({ kind: 'service', action: 'enable', unit: s.unit }),
          expect.objectContaining({ kind: 'service', action: 'start', unit: s.unit }),
        ]);
      });

      it('switching MTA stops and disables the other one, and warns when its queue holds mail', () => {
        const facts = converged(d);
        const other = d.replaces[0]!;
        facts.services[other.unit] = { enabled: 'enabled', active: 'active' };
        facts.queues[other.queue] = 3;
        const p = plan(d, facts);
        expect(p.changes).toEqual([expect.objectContaining({ kind: 'service', action: 'stop-disable', unit: other.unit })]);
        expect(p.warnings.join('\n')).toMatch(new RegExp(`3 messages wait in the ${other.queue} queue`));
      });

      it('the activation script for a fresh host is valid shell and uses the family tools', () => {
        const facts = empty(family);
        const p = plan(d, facts);
        const script = activationScript({ desired: d, facts, plan: p, digest: 'abc' });
        const r = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(script).toMatch(family === 'debian' ? /apt-get install/ : /dnf install/);
        expect(script).toMatch(/flock/);
        if (family === 'rhel') expect(script).toMatch(/restorecon -F .*\/etc\/postfix\/main\.cf/);
        else expect(script).not.toMatch(/restorecon/);
        expect(stagedFiles(d, p).length).toBe(d.files.length);
        // no secret in the script itself: secret files travel in the payload only
        const secrets = d.files.filter((x) => x.secret);
        expect(secrets.length).toBeGreaterThan(0);
        for (const f of secrets) for (const h of hashesOf(f.content)) expect(script).not.toContain(h);
      });
    });
  }
});
