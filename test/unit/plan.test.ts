/** The planner with plain data: facts in, changes out. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { plan, sha256 } from '../../src/plan/plan.js';
import { activationScript, stagedFiles } from '../../src/apply/script.js';
import type { DesiredHost } from '../../src/model/desired.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { OsFamily } from '../../src/model/site.js';
import { loadSite } from '../../src/site/load.js';
import { renderHosts } from '../../src/render/site.js';

process.env['MAILOPS_BOB_PASSWORD'] = 'plan-test-password';
const file = new URL('../../playbooks/examples/contract.yaml', import.meta.url).pathname;

function desired(family: OsFamily, mutate?: (text: string) => string): DesiredHost {
  const { site } = loadSite(file);
  void mutate;
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
        expect(kinds('command').length).toBe(d.commands.length);
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
        if (!secret) return;
        const facts = converged(d);
        facts.files[secret.path] = { ...facts.files[secret.path]!, sha256: 'f'.repeat(64), content: 'alice@example.com:{SHA512-CRYPT}$6$old$hash' };
        const p = plan(d, facts);
        const fc = p.changes.find((c) => c.kind === 'file') as { diff: string };
        expect(fc.diff).toMatch(/secret/);
        expect(fc.diff).not.toMatch(/SHA512-CRYPT|\$6\$/);
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
        for (const f of d.files.filter((x) => x.secret)) expect(script).not.toContain(f.content.trim().slice(0, 40));
      });
    });
  }
});
