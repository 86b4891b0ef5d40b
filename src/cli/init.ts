import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { readTemplate } from '../components/load.js';
import { UserError } from '../errors.js';
import { compile } from '../render/handlebars.js';
import { fqdnProblem, isFqdn } from '../site/syntax.js';
import { info } from './output.js';

export function starterPlaybook(domain: string, file: string): string {
  const site = domain.replace(/\./g, '-');
  return compile(readTemplate('init/site.yaml.hbs'), 'init/site.yaml.hbs')({ domain, site, file });
}

export function registerInit(p: Command): void {
  p.command('init')
    .description('write a commented starter site playbook for a new mailing domain')
    .argument('<domain>', 'the mail domain, e.g. example.com')
    .option('-o, --output <file>', 'where to write it', 'site.yaml')
    .option('--force', 'overwrite an existing file')
    .action((domain: string, o: { output: string; force?: boolean }) => {
      const d = domain.toLowerCase().replace(/\.$/, '');
      if (!isFqdn(d)) throw new UserError(`domain ${fqdnProblem(domain)}`);
      if (existsSync(o.output) && !o.force) throw new UserError(`${o.output} already exists: choose another --output or add --force`);
      writeFileSync(o.output, starterPlaybook(d, o.output));
      info(`wrote ${o.output} for ${d}: edit the addresses marked "change me", then \`mailops validate ${o.output}\``);
    });
}
