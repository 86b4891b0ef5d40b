/** The shared part of the commands that reach hosts: flags, targets, plan+apply over the site. */
import type { Command } from 'commander';
import type { Host, Site } from '../model/site.js';
import type { ConnectOptions } from '../ssh/connection.js';
import { UserError } from '../errors.js';
import { serverProblem } from '../site/semantic.js';
import { expandHome } from '../paths.js';

export interface RemoteFlags {
  json?: boolean;
  host?: string[];
  knownHosts: string;
  acceptNew?: boolean;
  sandbox?: boolean;
  dnsServer?: string;
  tsigKey?: string;
  resolver?: string;
}

export function remoteOptions(c: Command): Command {
  return c
    .argument('<site>', 'the site playbook (YAML)')
    .option('--json', 'machine-readable result on stdout (human text on stderr)')
    .option('--host <name>', 'limit to this host (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--known-hosts <file>', 'known_hosts file for host key checks', '~/.ssh/known_hosts')
    .option('--accept-new', 'trust on first use: record an unknown host key (a changed key is always refused)')
    .option('--sandbox', 'target the local sandbox containers started by `mailops sandbox up` instead of the playbook addresses');
}

/** plan and apply: where the zones are pushed (RFC 2136), overriding the playbook's dns.update. */
export function dnsOptions(c: Command): Command {
  return c
    .option('--dns-server <host[:port]>', "push the zones to this primary server with DNS UPDATE (overrides dns.update.server)")
    .option('--tsig-key <file>', 'the TSIG key (a BIND key file, as tsig-keygen writes it) that signs the updates (overrides dns.update.key)')
    .option('--resolver <ip[:port]>', 'the DNS server asked whether a new DKIM key is published before it signs (default: the dns.update server, else the system resolver)');
}

export function targetFor(flags: RemoteFlags, overrides?: (host: Host) => Partial<ConnectOptions> | undefined) {
  return (host: Host): ConnectOptions => ({
    name: host.name,
    address: host.ssh.address,
    port: host.ssh.port,
    user: host.ssh.user,
    ...(host.ssh.identity !== undefined ? { identity: host.ssh.identity } : {}),
    ...(host.ssh.hostKey !== undefined ? { hostKey: host.ssh.hostKey } : {}),
    knownHostsFile: expandHome(flags.knownHosts),
    acceptNew: Boolean(flags.acceptNew),
    ...(overrides?.(host) ?? {}),
  });
}

export type { Site };

/** A --resolver flag that is no server address is refused before anything is contacted. */
export function checkResolver(server: string | undefined): void {
  const problem = server === undefined ? null : serverProblem(server);
  if (problem) throw new UserError(`--resolver ${server} ${problem}`);
}
