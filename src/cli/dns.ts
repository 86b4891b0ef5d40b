import type { Command } from 'commander';
import { renderZones } from '../dns/zone.js';
import { writeZones } from '../render/write.js';
import { info, out } from './output.js';
import { load } from './site-io.js';

export function registerDns(p: Command): void {
  p.command('dns')
    .description('print the BIND zone file of every domain (--out DIR writes DIR/<domain>.zone)')
    .argument('<site>', 'the site playbook (YAML)')
    .option('--out <dir>', 'write DIR/<domain>.zone instead of printing')
    .action((file: string, o: { out?: string }) => {
      const { site, state } = load(file, { secrets: 'ignore' });
      const zones = renderZones(site, state);
      if (o.out) info(`wrote ${writeZones(o.out, { zones }).join(', ')}`);
      else out(zones.map((z) => z.text).join('\n'));
    });
}
