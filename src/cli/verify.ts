import type { Command } from 'commander';
import { selectHosts } from '../apply/site.js';
import type { Host } from '../model/site.js';
import { readInventory } from '../sandbox/inventory.js';
import { UserError } from '../errors.js';
import type { Endpoint } from '../verify/checks.js';
import { verifySite } from '../verify/site.js';
import { green, info, json, out, red, yellow } from './output.js';
import { checkResolver, remoteOptions } from './remote.js';
import type { RemoteFlags } from './remote.js';
import { load } from './site-io.js';
import { sandboxSite } from './sandbox-target.js';
import { sandboxPeer } from '../sandbox/sandbox.js';
import { peerChecks } from '../verify/peer.js';
import { resolverFor } from '../verify/dns.js';

/** The sandbox's DNS server, as 127.0.0.1:PORT. */
function sandboxResolver(file: string): string {
  const dns = readInventory()?.dns;
  if (!dns) throw new UserError(`the sandbox has no DNS server: run \`mailops sandbox up ${file}\` again`);
  return `127.0.0.1:${dns.port}`;
}

function endpoints(file: string, o: RemoteFlags): (h: Host) => Endpoint {
  if (!o.sandbox) return (h) => ({ address: h.ssh.address, port: (p) => p });
  const inv = readInventory();
  return (h) => {
    const s = inv?.hosts.find((x) => x.name === h.name);
    if (!s) throw new UserError(`host ${h.name}: no sandbox container for it: run \`mailops sandbox up ${file}\` first`);
    return {
      address: '127.0.0.1',
      port: (p) => {
        const mapped = s.ports[String(p)];
        if (mapped === undefined) throw new Error(`port ${p} is not published by the sandbox container`);
        return mapped;
      },
    };
  };
}

export function registerVerify(p: Command): void {
  remoteOptions(p.command('verify').description('protocol-level checks against the running hosts (SMTP, submission, IMAP, POP3, TLS, relay, auth, DKIM, DNS)'))
    .option('--resolver <ip[:port]>', 'ask this DNS server for every DNS check (default: the system resolver; with --sandbox: the sandbox DNS server)')
    .action(async (file: string, o: RemoteFlags & { resolver?: string }) => {
      const loaded = load(file);
      const site = sandboxSite(loaded.site, o);
      const state = loaded.state;
      const hosts = selectHosts(site, o.host);
      const ep = endpoints(file, o);
      for (const h of hosts) ep(h);
      const server = o.resolver ?? (o.sandbox ? sandboxResolver(file) : undefined);
      checkResolver(server);
      const checks = await verifySite(site, state, hosts, ep, server ? { resolver: resolverFor(server), resolverName: server } : {});
      // The sandbox has a receiving peer: its verdict on our mail is the deliverability check.
      const inv = o.sandbox ? readInventory() : undefined;
      const peer = inv ? sandboxPeer(inv) : undefined;
      if (peer) checks.push(...(await peerChecks(site, state, hosts, ep, peer)));
      const say = o.json ? info : out;
      for (const c of checks) {
        const mark = c.status === 'ok' ? green('ok     ') : c.status === 'skipped' ? yellow('skipped') : red('FAILED ');
        say(`${mark} ${c.host}: ${c.name}: ${c.detail}`);
      }
      const failed = checks.filter((c) => c.status === 'failed').length;
      const skippedN = checks.filter((c) => c.status === 'skipped').length;
      say(`Verify: ${checks.length - failed - skippedN} passed, ${failed} failed, ${skippedN} skipped`);
      if (o.json) json({ ok: failed === 0, checks: checks.map((c) => ({ host: c.host, name: c.name, ok: c.status !== 'failed', status: c.status, detail: c.detail })) });
      process.exitCode = failed ? 1 : 0;
    });
}
