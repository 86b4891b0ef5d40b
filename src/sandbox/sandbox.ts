/** The embedded default target: one local VPS container per playbook host, reachable on 127.0.0.1. */
import { dirname, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { run } from '../testbed/docker.js';
import { ensureDockerEngine } from '../testbed/engine.js';
import { startVps } from '../testbed/harness.js';
import { vpsImage } from '../testbed/images.js';
import type { Log } from '../testbed/images.js';
import { inventoryPath, readInventory, removeInventory, writeInventory } from './inventory.js';
import type { Inventory } from './inventory.js';

export const SANDBOX_PREFIX = 'mailops-sandbox';

export async function sandboxUp(hostNames: string[], playbook: string | undefined, log: Log): Promise<Inventory> {
  await ensureDockerEngine(log);
  const existing = readInventory();
  if (existing) await sandboxDown(log);
  const image = await vpsImage(log);
  log(`starting ${hostNames.length} VPS container${hostNames.length === 1 ? '' : 's'} (${image})...`);
  const keyDir = dirname(inventoryPath());
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const cluster = await startVps({ image, names: hostNames, prefix: SANDBOX_PREFIX, persistent: true, network: `${SANDBOX_PREFIX}-net`, keyDir });
  const inv: Inventory = {
    version: 1,
    network: cluster.network,
    ...(playbook ? { playbook } : {}),
    hosts: cluster.hosts.map((h) => ({
      name: h.name,
      container: h.container,
      address: '127.0.0.1',
      sshPort: h.ports[22]!,
      identity: join(keyDir, 'id_ed25519'),
      hostKey: h.hostKey,
      ports: Object.fromEntries(Object.entries(h.ports).map(([k, v]) => [k, v])),
    })),
  };
  writeInventory(inv);
  return inv;
}

export async function sandboxDown(log: Log): Promise<number> {
  const inv = readInventory();
  const names = inv?.hosts.map((h) => h.container) ?? [];
  const listed = (await run('docker', ['ps', '-aq', '--filter', `name=^${SANDBOX_PREFIX}-`])).stdout.split('\n').filter(Boolean);
  if (names.length || listed.length) {
    log(`removing ${Math.max(names.length, listed.length)} sandbox container(s)...`);
    await run('docker', ['rm', '-f', '-v', ...new Set([...names, ...listed])]);
  }
  await run('docker', ['network', 'rm', inv?.network ?? `${SANDBOX_PREFIX}-net`]);
  removeInventory();
  return names.length;
}

export async function sandboxStatus(): Promise<Array<{ name: string; container: string; state: string; ssh: string; ports: Record<string, number> }>> {
  const inv = readInventory();
  if (!inv) return [];
  return Promise.all(
    inv.hosts.map(async (h) => {
      const r = await run('docker', ['inspect', '-f', '{{.State.Status}}', h.container]);
      return { name: h.name, container: h.container, state: r.code === 0 ? r.stdout.trim() : 'missing', ssh: `ssh -i ${h.identity} -p ${h.sshPort} root@127.0.0.1`, ports: h.ports };
    }),
  );
}
