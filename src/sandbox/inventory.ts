/** The sandbox inventory: which local containers stand in for which playbook hosts. */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface SandboxHost {
  name: string;
  container: string;
  address: string;
  /** The container's address on the sandbox network (what the sandbox's zones publish). */
  ip?: string;
  sshPort: number;
  identity: string;
  hostKey: string;
  /** Container port → 127.0.0.1 port. */
  ports: Record<string, number>;
}

export interface Inventory {
  version: 1;
  network: string;
  playbook?: string;
  hosts: SandboxHost[];
  /** The sandbox's authoritative DNS server (BIND) that the hosts resolve through. */
  dns?: { container: string; ip: string; port: number; keyFile: string };
  /** The strict receiving peer. */
  peer?: { container: string; ip: string; domain: string; hostname: string };
}

export function inventoryPath(): string {
  const base = process.env['MAILOPS_SANDBOX_DIR'] ?? join(process.env['XDG_STATE_HOME'] ?? join(homedir(), '.local', 'state'), 'mailops', 'sandbox');
  return join(base, 'inventory.json');
}

export function readInventory(): Inventory | undefined {
  const p = inventoryPath();
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as Inventory;
}

export function writeInventory(inv: Inventory): void {
  const p = inventoryPath();
  mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
  writeFileSync(p, `${JSON.stringify(inv, null, 2)}\n`, { mode: 0o600 });
}

export function removeInventory(): void {
  rmSync(inventoryPath(), { force: true });
}
