/**
 * The site state file beside the playbook (`<playbook>.state.json`): public data only, safe to commit.
 * It holds the DKIM public keys recorded by `apply` and the serial of every zone with the digest of the
 * content it was given for, so serials are deterministic and increase only when a zone changes.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { UserError } from '../errors.js';
import type { OsFamily } from '../model/site.js';
import type { DovecotGeneration } from '../os/index.js';

export interface DkimPublicKey {
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  bits?: number;
  /** Base64 of the key as published in the p= tag. */
  publicKey: string;
  /** The host that holds the private key (older state files: the host whose selector it is). */
  host?: string;
  /** signing | pending (published, not yet signing) | retired (published for the grace period); signing when absent. */
  status?: 'signing' | 'pending' | 'retired';
  /** Unix seconds: when a retired key stopped signing. */
  since?: number;
}

export interface ZoneSerial {
  serial: number;
  digest: string;
}

export interface SiteState {
  version: 1;
  /** By record name: <selector>._domainkey.<domain> (each host's keys, with their lifecycle). */
  dkim: Record<string, DkimPublicKey>;
  zones: Record<string, ZoneSerial>;
  /**
   * Host name → SHA-256 (hex) of the certificate its mail services presented at the last apply. verify
   * accepts a self-signed certificate only when it is this one (the host's own).
   */
  tls: Record<string, string>;
  /** Host name → the OS family it had at the last apply (os: auto renders that family first). */
  families?: Record<string, OsFamily>;
  /** Host name → the Dovecot generation its configuration was rendered for at the last apply (os: auto or not). */
  dovecot?: Record<string, DovecotGeneration>;
}

export const emptyState = (): SiteState => ({ version: 1, dkim: {}, zones: {}, tls: {} });

export function statePath(playbook: string): string {
  return join(dirname(playbook), `${basename(playbook, extname(playbook))}.state.json`);
}

export function readState(playbook: string): SiteState {
  const p = statePath(playbook);
  if (!existsSync(p)) return emptyState();
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new UserError(`${p}: the state file is not valid JSON (${(e as Error).message}); fix or delete it (apply records it again)`);
  }
  const s = data as Partial<SiteState>;
  if (typeof s !== 'object' || s === null || s.version !== 1) throw new UserError(`${p}: not a mailops state file (version 1)`);
  return { version: 1, dkim: s.dkim ?? {}, zones: s.zones ?? {}, tls: s.tls ?? {}, ...(s.families ? { families: s.families } : {}), ...(s.dovecot ? { dovecot: s.dovecot } : {}) };
}

/** Canonical text: sorted keys, so a committed state file only changes when its content does. */
export function stateText(state: SiteState): string {
  const sortObj = <T>(o: Record<string, T>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ version: 1, dkim: sortObj(state.dkim), zones: sortObj(state.zones), ...(Object.keys(state.tls).length ? { tls: sortObj(state.tls) } : {}), ...(state.families && Object.keys(state.families).length ? { families: sortObj(state.families) } : {}), ...(state.dovecot && Object.keys(state.dovecot).length ? { dovecot: sortObj(state.dovecot) } : {}) }, null, 2)}\n`;
}

/** Write the state atomically when it differs from what is on disk. Returns whether it wrote. */
export function writeState(playbook: string, state: SiteState): boolean {
  const p = statePath(playbook);
  const text = stateText(state);
  if (existsSync(p) && readFileSync(p, 'utf8') === text) return false;
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, p);
  return true;
}
