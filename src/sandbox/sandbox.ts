/**
 * The embedded default target: the mail world in a box, on this machine. One VPS container per host of
 * the playbook (Debian, systemd, sshd, nothing of the mail stack), an authoritative DNS server (BIND)
 * that serves the playbook's zones and the reverse zone with every host's PTR and is the hosts' only
 * resolver, and a strict receiving peer (peer.test) that judges the mail the hosts send. Everything is
 * reachable on 127.0.0.1 only and recorded in the inventory, so `--sandbox` finds it from any process.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from '../testbed/docker.js';
import { ensureDockerEngine } from '../testbed/engine.js';
import { dnsImage, peerImage, vpsImage } from '../testbed/images.js';
import type { Log } from '../testbed/images.js';
import { PEER_INBOX_COMMAND, inboxMessages, startWorld } from '../testbed/world.js';
import { inventoryPath, readInventory, removeInventory, writeInventory } from './inventory.js';
import type { Inventory } from './inventory.js';

/** Names of the sandbox's containers and network start with this (MAILOPS_SANDBOX_PREFIX: a second sandbox). */
export const SANDBOX_PREFIX = process.env['MAILOPS_SANDBOX_PREFIX'] ?? 'mailops-sandbox';

export interface SandboxSpec {
  hosts: Array<{ name: string; hostname: string }>;
  /** The zones the DNS server serves (the playbook's domains), with their name servers. */
  zones: string[];
  nameservers: string[];
  playbook?: string;
  /** The Debian release of the VPS containers (default SUITE, bookworm). */
  suite?: string;
}

export async function sandboxUp(spec: SandboxSpec, log: Log): Promise<Inventory> {
  await ensureDockerEngine(log);
  if (readInventory() || (await leftovers()).length) await sandboxDown(log);
  const [vps, dns, peer] = [await vpsImage(log, spec.suite), await dnsImage(log), await peerImage(log)];
  log(`starting the sandbox: ${spec.hosts.length} VPS container${spec.hosts.length === 1 ? '' : 's'}, a DNS server and a receiving peer...`);
  const keyDir = dirname(inventoryPath());
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const world = await startWorld({ images: { vps, dns, peer }, hosts: spec.hosts, prefix: SANDBOX_PREFIX, persistent: true, keyDir, log });
  try {
    for (const z of spec.zones) await world.addZone(z, { nameservers: spec.nameservers });
  } catch (e) {
    await world.stop();
    throw e;
  }
  const inv: Inventory = {
    version: 1,
    network: world.network,
    ...(spec.playbook ? { playbook: spec.playbook } : {}),
    hosts: world.vps.hosts.map((h) => ({
      name: h.name,
      container: h.container,
      address: '127.0.0.1',
      ip: h.ip,
      sshPort: h.ports[22]!,
      identity: world.vps.identity,
      hostKey: h.hostKey,
      ports: Object.fromEntries(Object.entries(h.ports).map(([k, v]) => [k, v])),
    })),
    dns: { container: world.dns.container, ip: world.dns.ip, port: world.dns.port, keyFile: world.dns.keyFile },
    ...(world.peer ? { peer: { container: world.peer.container, ip: world.peer.ip, domain: world.peer.domain, hostname: world.peer.hostname } } : {}),
  };
  writeInventory(inv);
  return inv;
}

async function leftovers(): Promise<string[]> {
  return (await run('docker', ['ps', '-aq', '--filter', `name=^${SANDBOX_PREFIX}-`])).stdout.split('\n').filter(Boolean);
}

export async function sandboxDown(log: Log): Promise<number> {
  const inv = readInventory();
  const names = [...(inv?.hosts.map((h) => h.container) ?? []), ...(inv?.dns ? [inv.dns.container] : []), ...(inv?.peer ? [inv.peer.container] : [])];
  const listed = await leftovers();
  if (names.length || listed.length) {
    log(`removing ${Math.max(names.length, listed.length)} sandbox container(s)...`);
    await run('docker', ['rm', '-f', '-v', ...new Set([...names, ...listed])]);
  }
  await run('docker', ['network', 'rm', inv?.network ?? `${SANDBOX_PREFIX}-net`]);
  removeInventory();
  return names.length || listed.length;
}

export interface SandboxStatus {
  name: string;
  role: 'host' | 'dns' | 'peer';
  container: string;
  state: string;
  ip?: string;
  ssh?: string;
  ports: Record<string, number>;
}

export async function sandboxStatus(): Promise<SandboxStatus[]> {
  const inv = readInventory();
  if (!inv) return [];
  const state = async (c: string) => {
    const r = await run('docker', ['inspect', '-f', '{{.State.Status}}', c]);
    return r.code === 0 ? r.stdout.trim() : 'missing';
  };
  const hosts = await Promise.all(
    inv.hosts.map(async (h): Promise<SandboxStatus> => ({
      name: h.name,
      role: 'host',
      container: h.container,
      state: await state(h.container),
      ...(h.ip ? { ip: h.ip } : {}),
      ssh: `ssh -i ${h.identity} -p ${h.sshPort} root@127.0.0.1`,
      ports: h.ports,
    })),
  );
  const dns: SandboxStatus[] = inv.dns ? [{ name: 'dns', role: 'dns', container: inv.dns.container, state: await state(inv.dns.container), ip: inv.dns.ip, ports: { '53': inv.dns.port } }] : [];
  const peer: SandboxStatus[] = inv.peer ? [{ name: inv.peer.hostname, role: 'peer', container: inv.peer.container, state: await state(inv.peer.container), ip: inv.peer.ip, ports: {} }] : [];
  return [...hosts, ...dns, ...peer];
}


/** The sandbox's receiving peer, read from outside: every message it accepted (its Maildir). */
export function sandboxPeer(inv: Inventory): { domain: string; hostname: string; inbox(): Promise<string[]> } | undefined {
  const p = inv.peer;
  if (!p) return undefined;
  return {
    domain: p.domain,
    hostname: p.hostname,
    inbox: async () => {
      const r = await run('docker', ['exec', p.container, 'sh', '-c', PEER_INBOX_COMMAND]);
      if (r.code !== 0) throw new Error(`reading the peer's inbox failed: ${r.stderr.trim()}`);
      return inboxMessages(r.stdout);
    },
  };
}
