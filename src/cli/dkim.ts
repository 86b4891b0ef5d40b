import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { runApply } from './apply.js';
import type { ApplyFlags } from './apply.js';
import { dnsOptions, remoteOptions } from './remote.js';
import { load } from './site-io.js';

/**
 * `mailops dkim rotate SITE.yaml [--domain D]`: every host makes a new key for the domains (of the type
 * the playbook asks for) under a new selector. It runs as apply does: the new key is published first and
 * signs once DNS serves it (with dns.update, in this same run), and the old one stays published for the
 * domain's grace period.
 */
export function registerDkim(p: Command): void {
  const dkim = p.command('dkim').description('DKIM key management');
  dnsOptions(remoteOptions(dkim.command('rotate').description('replace the DKIM keys of every host with new ones, published before they sign (all DKIM domains, or --domain)')))
    .option('--domain <domain>', 'only this domain (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--yes', 'apply without asking')
    .action(async (file: string, o: ApplyFlags & { domain?: string[] }) => {
      const { site } = load(file);
      const signed = site.domains.filter((d) => d.dkim).map((d) => d.name);
      for (const d of o.domain ?? []) {
        const name = d.toLowerCase().replace(/\.$/, '');
        if (!site.domains.some((x) => x.name === name)) throw new UserError(`--domain ${d}: no such domain in the playbook (domains: ${site.domains.map((x) => x.name).join(', ')})`);
        if (!signed.includes(name)) throw new UserError(`--domain ${d}: the playbook signs no mail for ${name} (add dkim: { selector: ... } to it)`);
      }
      const domains = o.domain?.length ? o.domain.map((d) => d.toLowerCase().replace(/\.$/, '')) : signed;
      if (!domains.length) throw new UserError('no domain of the playbook has DKIM: nothing to rotate');
      await runApply(file, o, 'dkim rotate', new Set(domains));
    });
}
