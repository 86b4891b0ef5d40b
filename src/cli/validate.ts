import type { Command } from 'commander';
import { checkSite } from '../site/load.js';
import { green, info, json, printDiagnostics, red } from './output.js';

export function registerValidate(p: Command): void {
  p.command('validate')
    .description('load and check the site playbook; touches no host')
    .argument('<site>', 'the site playbook (YAML)')
    .option('--json', 'machine-readable result on stdout')
    .action((file: string, o: { json?: boolean }) => {
      const r = checkSite(file, { secrets: 'warning' });
      const errors = r.diagnostics.filter((d) => d.severity === 'error').length;
      if (o.json) json({ ok: r.ok, diagnostics: r.diagnostics });
      printDiagnostics(r.diagnostics);
      if (!r.ok) {
        info(red(`${file}: ${errors} error${errors === 1 ? '' : 's'}`));
        process.exitCode = 1;
        return;
      }
      const s = r.site;
      const mailboxes = s.domains.reduce((n, d) => n + d.mailboxes.length, 0);
      const aliases = s.domains.reduce((n, d) => n + d.aliases.length, 0);
      const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : /[sx]$/.test(w) ? 'es' : 's'}`;
      info(green(`${file}: valid`) + ` (${plural(s.hosts.length, 'host')}, ${plural(s.domains.length, 'domain')}, ${plural(mailboxes, 'mailbox')}, ${plural(aliases, 'alias')}, ${s.stack.mta})`);
    });
}
