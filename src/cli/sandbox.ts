import type { Command } from 'commander';
import { checkSite } from '../site/load.js';
import { PlaybookError } from '../errors.js';
import { sandboxDown, sandboxStatus, sandboxUp } from '../sandbox/sandbox.js';
import { info, json, out } from './output.js';

const SERVICES: Record<string, string> = { '22': 'ssh', '25': 'smtp', '465': 'submissions', '587': 'submission', '143': 'imap', '993': 'imaps', '110': 'pop3', '995': 'pop3s' };

function describe(hosts: Awaited<ReturnType<typeof sandboxStatus>>): string {
  return hosts
    .map((h) =>
      [`${h.name} (${h.container}, ${h.state})`, `  ${h.ssh}`, ...Object.entries(h.ports).map(([p, local]) => `  ${(SERVICES[p] ?? p).padEnd(12)} 127.0.0.1:${local} → ${p}`)].join('\n'),
    )
    .join('\n');
}

export function registerSandbox(p: Command): void {
  const sb = p.command('sandbox').description('local VPS containers to try a playbook on (plan/apply/verify --sandbox target them)');
  sb.command('up')
    .description('start one VPS container per host of the playbook (or one, named mx1)')
    .argument('[site]', 'the site playbook (YAML)')
    .option('--json', 'machine-readable result on stdout')
    .action(async (file: string | undefined, o: { json?: boolean }) => {
      let names = ['mx1'];
      if (file) {
        const r = checkSite(file, { secrets: 'ignore' });
        if (!r.ok) throw new PlaybookError(r.diagnostics);
        names = r.site.hosts.map((h) => h.name);
      }
      await sandboxUp(names, file, (l) => info(l));
      const st = await sandboxStatus();
      if (o.json) json({ hosts: st });
      else out(`${describe(st)}\nTarget it with --sandbox, e.g.: mailops apply --sandbox ${file ?? 'SITE.yaml'}`);
    });
  sb.command('down')
    .description('remove every sandbox container')
    .action(async () => {
      const n = await sandboxDown((l) => info(l));
      info(n ? 'sandbox removed' : 'no sandbox was running');
    });
  sb.command('status')
    .description('show the sandbox containers and how to reach them')
    .option('--json', 'machine-readable result on stdout')
    .action(async (o: { json?: boolean }) => {
      const st = await sandboxStatus();
      if (o.json) json({ hosts: st });
      else out(st.length ? describe(st) : 'no sandbox (start one with: mailops sandbox up SITE.yaml)');
    });
}
