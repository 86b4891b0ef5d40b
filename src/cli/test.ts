import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { info, json, out } from './output.js';
import { debianOption } from './release.js';

/**
 * `--base`: a playbook file, or a git revision whose SITE.yaml is the base (read as `SITE.yaml@REV`, beside
 * SITE, so its relative file references mean what they mean in SITE).
 */
function baseText(file: string, base: string): { text: string; name: string; file: string } {
  if (existsSync(base)) return { text: readFileSync(base, 'utf8'), name: base, file: resolve(base) };
  const dir = dirname(resolve(file));
  let top: string;
  try {
    top = execFileSync('git', ['-c', 'safe.directory=*', 'rev-parse', '--show-toplevel'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    throw new UserError(`--base ${base}: no such file, and ${file} is not in a git repository to read a revision from`);
  }
  const path = relative(top, resolve(file)).split('\\').join('/');
  try {
    return { text: execFileSync('git', ['-c', 'safe.directory=*', 'show', `${base}:${path}`], { cwd: top, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }), name: `${base}:${path}`, file: `${resolve(file)}@${base}` };
  } catch (e) {
    const why = String((e as { stderr?: string }).stderr ?? '').trim().split('\n')[0];
    throw new UserError(`--base ${base}: neither a file nor a git revision holding ${path}${why ? ` (git: ${why})` : ''}`);
  }
}

export function registerTest(p: Command): void {
  debianOption(p.command('test'))
    .description('prove the playbook in throwaway containers: apply, verify, real mail through every mailbox, alias, catch-all and send_as, limits, a re-apply with 0 changes; then remove everything')
    .argument('<site>', 'the site playbook (YAML)')
    .option('--base <old>', 'apply this playbook first (a file, or a git revision of SITE) and test the change to SITE: no mail lost, restarts only as planned')
    .option('--junit <file>', 'write a JUnit XML report')
    .option('--json', 'machine-readable report on stdout (progress on stderr)')
    .option('--keep', 'leave the containers running afterwards')
    .action(async (file: string, o: { base?: string; junit?: string; json?: boolean; keep?: boolean; debian: string }) => {
      if (!existsSync(file)) throw new UserError(`${file}: no such file`);
      const text = readFileSync(file, 'utf8');
      const base = o.base !== undefined ? baseText(file, o.base) : undefined;
      const { loadPlaybookText, runTest } = await import('../testrun/run.js');
      const { junitXml, summaryText } = await import('../testrun/report.js');
      // Both playbooks are checked before any container starts (the base in runTest): a bad one changes nothing.
      const site = loadPlaybookText(resolve(file), text);
      const report = await runTest(resolve(file), text, site, { ...(base ? { base } : {}), keep: Boolean(o.keep), suite: o.debian, log: (l) => info(l) });
      for (const n of report.notes) info(`note: ${n}`);
      if (o.junit) writeFileSync(o.junit, junitXml(report));
      if (o.json) json(report);
      (o.json ? info : out)(summaryText(report));
      process.exitCode = report.interrupted ? 130 : report.ok ? 0 : 1;
    });
}
