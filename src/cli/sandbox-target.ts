/** `--sandbox`: reach the hosts through the local sandbox containers recorded by `mailops sandbox up`. */
import type { Host, Site } from '../model/site.js';
import type { ConnectOptions } from '../ssh/connection.js';
import { UserError } from '../errors.js';
import { readInventory } from '../sandbox/inventory.js';
import type { RemoteFlags } from './remote.js';

export function sandboxOverrides(site: Site, flags: RemoteFlags): ((host: Host) => Partial<ConnectOptions>) | undefined {
  if (!flags.sandbox) return undefined;
  const inv = readInventory();
  return (host: Host) => {
    const h = inv?.hosts.find((x) => x.name === host.name);
    if (!h) throw new UserError(`host ${host.name}: no sandbox container for it: run \`mailops sandbox up ${site.file}\` first`);
    return { address: h.address, port: h.sshPort, user: 'root', identity: h.identity, hostKey: h.hostKey };
  };
}

/**
 * The site as the sandbox makes it true: every host's address is its container's address on the
 * sandbox network (no IPv6 there), and the name servers inside the zones are the sandbox's DNS server,
 * so the A, SPF, PTR and glue records that apply publishes are the real ones there.
 */
export function sandboxSite(site: Site, flags: RemoteFlags): Site {
  if (!flags.sandbox) return site;
  const inv = readInventory();
  if (!inv) throw new UserError(`no sandbox is running: run \`mailops sandbox up ${site.file}\` first`);
  const hosts = site.hosts.map((h) => {
    const ip = inv.hosts.find((x) => x.name === h.name)?.ip;
    if (!ip) return h;
    const { ipv6: _v6, ...rest } = h;
    void _v6;
    return { ...rest, ipv4: ip };
  });
  const dnsIp = inv.dns?.ip;
  const nameserverAddresses = dnsIp
    ? Object.fromEntries(site.dns.nameservers.filter((n) => site.domains.some((d) => n === d.name || n.endsWith(`.${d.name}`))).map((n) => [n, { ipv4: dnsIp }]))
    : site.dns.nameserverAddresses;
  return { ...site, hosts, dns: { ...site.dns, nameserverAddresses } };
}

/** The sandbox's DNS server as a push target (127.0.0.1:PORT and its TSIG key file). */
export function sandboxDns(flags: RemoteFlags): { server: string; keyFile: string } | undefined {
  if (!flags.sandbox) return undefined;
  const dns = readInventory()?.dns;
  return dns ? { server: `127.0.0.1:${dns.port}`, keyFile: dns.keyFile } : undefined;
}
