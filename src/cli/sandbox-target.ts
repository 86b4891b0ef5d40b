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
