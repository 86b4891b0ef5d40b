import type { Command } from 'commander';
import { clientSettings, formatClientSettings } from '../clients/settings.js';
import { json, out } from './output.js';
import { load } from './site-io.js';

export function registerClients(p: Command): void {
  p.command('clients')
    .description('print, for every mailbox, what to type into a mail client (servers, ports, security, user name) and what to do about common client errors')
    .argument('<site>', 'the site playbook (YAML)')
    .option('--json', 'machine-readable result on stdout')
    .action((file: string, o: { json?: boolean }) => {
      const { site, state } = load(file, { secrets: 'ignore' });
      const c = clientSettings(site, state);
      if (o.json) json(c);
      else out(formatClientSettings(c).trimEnd());
    });
}
