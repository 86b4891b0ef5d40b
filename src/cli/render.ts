import type { Command } from 'commander';
import { renderSite } from '../render/site.js';
import { writeTree } from '../render/write.js';
import { UserError } from '../errors.js';
import { info, json, yellow } from './output.js';
import { load } from './site-io.js';
import { resolveCredentials } from '../render/credentials.js';

export function registerRender(p: Command): void {
  p.command('render')
    .description('write every rendered file (DIR/<host>/<path on the host>) and zone (DIR/dns/<domain>.zone); no host touched')
    .argument('<site>', 'the site playbook (YAML)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--host <name>', 'limit to this host (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--json', 'machine-readable result on stdout')
    .action((file: string, o: { out: string; host?: string[]; json?: boolean }) => {
      const { site, state } = load(file, { secrets: 'ignore' });
      for (const h of o.host ?? []) if (!site.hosts.some((x) => x.name === h)) throw new UserError(`--host ${h}: no such host in ${file} (hosts: ${site.hosts.map((x) => x.name).join(', ')})`);
      const missing: string[] = [];
      const rendered = renderSite(site, state, { hosts: o.host ?? [], credentials: resolveCredentials(site, missing) });
      for (const m of missing) info(yellow(`warning: ${m}: rendered with a locked password (no login) — apply needs the secret`));
      const files = writeTree(o.out, rendered);
      if (o.json) json({ ok: true, out: o.out, files });
      info(`wrote ${files.length} files to ${o.out} (${rendered.hosts.map((h) => `${h.host.name}: ${h.files.length}`).join(', ')}; ${rendered.zones.length} zones)`);
    });
}
