/** The pure parts of apply under faults: interrupted runs in the plan, the activation's safeguards, its report. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseReport } from '../../src/apply/report.js';
import { activationScript, tlsCheck } from '../../src/apply/script.js';
import { outcomeWords } from '../../src/apply/host.js';
import { stepOf } from '../../src/apply/steps.js';
import { parseFacts } from '../../src/facts/parse.js';
import type { DesiredHost } from '../../src/model/desired.js';
import type { HostFacts } from '../../src/model/facts.js';
import { plan } from '../../src/plan/plan.js';
import { renderHosts } from '../../src/render/site.js';
import { loadSite } from '../../src/site/load.js';
import { convergedFacts } from './support/facts.js';

process.env['MAILOPS_BOB_PASSWORD'] = 'faults-test-password';
const { site } = loadSite(new URL('../../playbooks/examples/contract.yaml', import.meta.url).pathname);
const d: DesiredHost = renderHosts(site, { detectedOs: new Map([['mx1', 'debian']]) })[0]!;

const converged = (): HostFacts => convergedFacts(d);

describe('an interrupted earlier run', () => {
  it('the fact script reports runs without a result, with their phase', () => {
    const out = ['@@mailops family', 'debian', '@@mailops interrupted', '20261123T120000-abc123\tswapping', '@@mailops end', ''].join('\n');
    expect(parseFacts(out).interrupted).toEqual([{ run: '20261123T120000-abc123', phase: 'swapping' }]);
  });

  it('killed before the swap: the plan says so and changes nothing more', () => {
    const p = plan(d, { ...converged(), interrupted: [{ run: 'r1', phase: 'backup' }] });
    expect(p.changes).toEqual([]);
    expect(p.warnings).toEqual(['an earlier apply (run r1) was interrupted during "backup": nothing was swapped (it was copying the previous files aside); this apply converges the host']);
  });

  it('killed after the swap began: every service is restarted, since the daemons may run the old configuration', () => {
    const p = plan(d, { ...converged(), interrupted: [{ run: 'r2', phase: 'swapped' }] });
    expect(p.changes.map((c) => `${c.kind} ${(c as { action: string }).action} ${(c as { unit: string }).unit}`).sort()).toEqual(d.services.map((s) => `service restart ${s.unit}`).sort());
    expect(p.warnings[0]).toMatch(/interrupted during "swapped": the new files are in place, but the services were not restarted with them/);
  });
});

describe('the activation script', () => {
  const facts = { ...converged(), files: {} };
  const script = activationScript({ desired: d, facts, plan: plan(d, facts), digest: 'abc' });

  it('is valid sh', () => {
    expect(spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' }).status).toBe(0);
  });

  it('installs packages under a policy-rc.d that forbids starting daemons, and removes it', () => {
    const f = { ...facts, packages: {} };
    const s = activationScript({ desired: d, facts: f, plan: plan(d, f), digest: 'abc' });
    const i = s.indexOf('exit 101');
    expect(i).toBeGreaterThan(0);
    expect(s.indexOf('apt-get install', i)).toBeGreaterThan(i);
    expect(s).toMatch(/\[ -z "\$POLICY" \] \|\| rm -f \/usr\/sbin\/policy-rc.d/);
  });

  it('keeps a copy of every previous file before it swaps, and swaps nothing when one copy fails', () => {
    const backup = script.indexOf('phase backup');
    const swap = script.indexOf('phase swapping');
    expect(backup).toBeGreaterThan(0);
    expect(swap).toBeGreaterThan(backup);
    expect(script.slice(backup, swap)).toMatch(/\[ -z "\$BACKFAIL" \] \|\| \{ say "@@mailops fail backup .*nothing was swapped"; .*finish failed 1; \}/);
  });

  it('rolls back by rename and checks that the services that ran before run again', () => {
    const rb = script.slice(script.indexOf('rollback() {'), script.indexOf('finish rolled-back 1'));
    expect(rb).toMatch(/cp -p "\$BACKUP\/\$\{f#\.\/\}" "\$t\.mailops-old" && mv -f "\$t\.mailops-old" "\$t"/);
    for (const s of d.services) expect(rb).toMatch(new RegExp(`systemctl is-active '?${(s.unit.includes('.') ? s.unit : `${s.unit}.service`).replace(/\./g, '\\.')}'?`));
    expect(rb).toContain('finish rollback-failed 1');
  });

  it('checks the certificate before anything is activated and a TLS handshake on every TLS port after', () => {
    expect(script.indexOf('step check certificate')).toBeLessThan(script.indexOf('phase swapping'));
    for (const port of [25, 587, 465, 993, 995, 143, 110]) expect(script).toContain(`handshake ${port} `);
    expect(script.indexOf('handshake 465')).toBeGreaterThan(script.indexOf('step check services'));
  });

  it('certificate checks: not a certificate, not a key, not a pair, expired; another name only warns', () => {
    const lines = tlsCheck('/c.pem', '/k.pem', 'mail.example.com').join('\n');
    expect(lines).toMatch(/fail tls \/c\.pem is not a certificate/);
    expect(lines).toMatch(/fail tls \/k\.pem is not a private key/);
    expect(lines).toMatch(/fail tls \/c\.pem does not belong to the key \/k\.pem/);
    expect(lines).toMatch(/fail tls \/c\.pem has expired/);
    expect(lines).toMatch(/-checkhost '?mail\.example\.com'? .*\|\| warn "the certificate \/c\.pem does not name mail\.example\.com/);
  });
});

describe('the report of a run', () => {
  it('reads results, warnings and failures', () => {
    const r = parseReport(['@@mailops step lock ok', '@@mailops warn the certificate /c does not name x', '@@mailops fail rollback the previous files are back, but these services did not come back: postfix.service', '@@mailops result rollback-failed'].join('\n'));
    expect(r.result).toBe('rollback-failed');
    expect(r.warnings).toEqual(['the certificate /c does not name x']);
    expect(r.failures[0]).toMatchObject({ step: 'rollback' });
    expect(outcomeWords('rollback-failed')).toMatch(/not every service came back/);
    expect(outcomeWords('failed')).toMatch(/before anything was activated/);
  });
});

describe('one path for preview and apply', () => {
  it('every change of a plan carries its shell step, and the activation script runs exactly those steps', async () => {
    const { stepOf, packagesStep } = await import('../../src/apply/steps.js');
    for (const facts of [{ ...converged(), files: {} }, { ...converged(), packages: {}, files: {}, users: {}, directories: {}, services: {}, commandsDone: [] }]) {
      const p = plan(d, facts);
      expect(p.changes.length).toBeGreaterThan(0);
      const script = activationScript({ desired: d, facts, plan: p, digest: 'abc' });
      const pkgs = p.changes.filter((c) => c.kind === 'package').map((c) => (c as { name: string }).name);
      if (pkgs.length) expect(script).toContain(packagesStep(d, pkgs).join('\n'));
      for (const c of p.changes) {
        if (c.kind === 'package') continue;
        const step = stepOf(c, d);
        expect(step.length).toBeGreaterThan(0);
        expect(script, `${c.kind} ${JSON.stringify(c).slice(0, 80)}`).toContain(step.join('\n'));
      }
    }
  });
});

describe('a reload in the activation', () => {
  /** Runs the reload step of postfix with a systemctl that logs its calls and says the unit is `state` after the reload. */
  function reload(state: 'active' | 'inactive'): string[] {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-reload-'));
    try {
      writeFileSync(join(dir, 'systemctl'), `#!/bin/sh\necho "$*" >> "${dir}/calls"\n[ "$1" = is-active ] && [ "${state}" = inactive ] && exit 3\nexit 0\n`, { mode: 0o755 });
      const [label, step] = stepOf({ kind: 'service', action: 'reload', unit: 'postfix.service', key: 'postfix', reason: 'main.cf changed' }, d);
      expect(label).toBe('step service reload postfix.service');
      const r = spawnSync('sh', ['-c', `PATH="${dir}:$PATH"; say() { echo "$*"; }; detail() { :; }; rollback() { echo ROLLBACK; }\n${step}`], { encoding: 'utf8' });
      expect(r.stdout).not.toContain('ROLLBACK');
      return readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('reloads a running unit, and nothing more while it stays active', () => {
    expect(reload('active')).toEqual(['reload-or-restart postfix.service', 'is-active --quiet postfix.service']);
  });

  it('starts the unit when the reload leaves it inactive (Postfix just upgraded from Debian 12 to 13 stops at a reload)', () => {
    expect(reload('inactive')).toEqual(['reload-or-restart postfix.service', 'is-active --quiet postfix.service', 'restart postfix.service']);
  });
});

describe('a command whose stderr says what it left for later (warn: true)', () => {
  /** Runs the step of a command that prints `out` and `err` and exits `rc`; the report of what it said. */
  function run(warn: boolean, rc: number) {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-warn-'));
    try {
      const desired: DesiredHost = { ...d, commands: [{ name: 'trust the certificate of mx2', run: `echo "done here"; echo "mx2 did not answer: apply again" >&2; exit ${rc}`, component: 'replication', notify: [], phase: 'running', ...(warn ? { warn: true } : {}) }] };
      const [label, ...lines] = stepOf({ kind: 'command', action: 'run', name: 'trust the certificate of mx2', index: 0, component: 'replication' }, desired);
      expect(label).toBe("step command 'trust the certificate of mx2'");
      const frame = `LOG=${dir}/log; say() { printf '%s\\n' "$*"; }; warn() { say "@@mailops warn $*"; }; detail() { printf '%s\\n' "$1" | while IFS= read -r l; do say "@@mailops detail $l"; done; }; CMDFAIL=`;
      const r = spawnSync('sh', ['-c', `${frame}\n${lines.join('\n')}\necho "CMDFAIL=$CMDFAIL"; ls ${dir}`], { encoding: 'utf8' });
      return { report: parseReport(r.stdout), cmdfail: /CMDFAIL=1/.test(r.stdout), left: r.stdout.includes('log.err') };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('succeeded: its stderr is a warning of the run, named by the command; its stdout is not shown', () => {
    const { report, cmdfail, left } = run(true, 0);
    expect(report.warnings).toEqual(['trust the certificate of mx2: mx2 did not answer: apply again']);
    expect(report.failures).toEqual([]);
    expect([cmdfail, left]).toEqual([false, false]);
  });

  it('failed: its stderr and stdout are the detail of the failure, and no warning', () => {
    const { report, cmdfail } = run(true, 1);
    expect(report.warnings).toEqual([]);
    expect(report.failures).toEqual([{ step: 'command', message: 'trust the certificate of mx2', detail: ['mx2 did not answer: apply again', 'done here'] }]);
    expect(cmdfail).toBe(true);
  });

  it('without warn: a command that succeeds says nothing, whatever it wrote', () => {
    expect(run(false, 0).report).toMatchObject({ warnings: [], failures: [] });
  });
});
