import type { Command } from 'commander';
import { checkSite } from '../site/load.js';
import { PlaybookError } from '../errors.js';
import { sandboxDown, sandboxStatus, sandboxUp } from '../sandbox/sandbox.js';
import type { SandboxSpec } from '../sandbox/sandbox.js';
import { info, json, out } from './output.js';
import { debianOption } from './release.js';

const SERVICES: Record<string, string> = { '22': 'ssh', '25': 'smtp', '465': 'submissions', '587': 'submission', '143': 'imap', '993': 'imaps', '110': 'pop3', '995': 'pop3s' };

function describe(items: Awaited<ReturnType<typeof sandboxStatus>>): string {
  return items
    .map((h) => {
      if (h.role === 'dns') return [`DNS server (${h.container}, ${h.state}) at ${h.ip}: the hosts' only resolver; TSIG-signed updates and AXFR`, `  dns          127.0.0.1:${h.ports['53']} → 53 (tcp and udp): dig @127.0.0.1 -p ${h.ports['53']} ...`].join('\n');
      if (h.role === 'peer') return `receiving peer ${h.name} (${h.container}, ${h.state}) at ${h.ip}: judges SPF, DKIM, DMARC, PTR and TLS of mail to @peer.test`;
      return [`${h.name} (${h.container}, ${h.state})${h.ip ? ` at ${h.ip}` : ''}`, `  ${h.ssh}`, ...Object.entries(h.ports).map(([p, local]) => `  ${(SERVICES[p] ?? p).padEnd(12)} 127.0.0.1:${local} → ${p}`)].join('\n');
    })
    .join('\n');
}

export function registerSandbox(p: Command): void {
  const sb = p.command('sandbox').description('a local mail world to try a playbook in: VPS containers, a DNS server and a receiving peer (plan/apply/verify --sandbox target them)');
  debianOption(sb.command('up'))
    .description('start one VPS container per host of the playbook (or one, named mx1), a DNS server serving its zones and a receiving peer')
    .argument('[site]', 'the site playbook (YAML)')
    .option('--json', 'machine-readable result on stdout')
    .action(async (file: string | undefined, o: { json?: boolean; debian: string }) => {
      let spec: SandboxSpec = { hosts: [{ name: 'mx1', hostname: 'mail.sandbox.test' }], zones: ['sandbox.test'], nameservers: ['ns1.sandbox.test'] };
      if (file) {
        const r = checkSite(file, { secrets: 'ignore' });
        if (!r.ok) throw new PlaybookError(r.diagnostics);
        const s = r.site;
        spec = { hosts: s.hosts.map((h) => ({ name: h.name, hostname: h.hostname })), zones: s.domains.map((d) => d.name), nameservers: s.dns.nameservers, playbook: s.file };
      }
      await sandboxUp({ ...spec, suite: o.debian }, (l) => info(l));
      const st = await sandboxStatus();
      if (o.json) json({ hosts: st });
      else out(`${describe(st)}\nTarget it with --sandbox, e.g.: mailops apply --sandbox ${file ?? 'SITE.yaml'}`);
    });
  sb.command('down')
    .description('remove every sandbox container and its network')
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
