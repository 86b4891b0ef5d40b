/** plan/apply over every host of a site, in parallel; one failing host does not stop the others. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import type { DesiredHost } from '../model/desired.js';
import type { HostPlan } from '../model/plan.js';
import type { Host, OsFamily, Site } from '../model/site.js';
import { renderHosts } from '../render/site.js';
import { resolveCredentials } from '../render/credentials.js';
import type { ConnectOptions, Connection } from '../ssh/connection.js';
import type { SiteState } from '../state/state.js';
import { applyHost, planHost } from './host.js';
import type { Planned, Progress } from './host.js';

export interface SiteRunOptions {
  hosts?: string[];
  /** How to reach each host (known_hosts, sandbox overrides...). */
  target: (host: Host) => ConnectOptions;
  connect: (opts: ConnectOptions) => Promise<Connection>;
  progress: Progress;
}

export interface HostOutcome {
  name: string;
  ok: boolean;
  changes: number;
  plan?: HostPlan;
  error?: string;
  dkim?: Array<{ domain: string; selector: string; algorithm: 'rsa' | 'ed25519'; publicKey: string }>;
  /** The certificate the host's services present (SHA-256 hex). */
  tlsFingerprint?: string;
  /** What the run warned about (it went on). */
  warnings?: string[];
}

export function playbookDigest(site: Site): string {
  return createHash('sha256').update(readFileSync(site.file)).digest('hex').slice(0, 16);
}

export function selectHosts(site: Site, names: string[] | undefined): Host[] {
  if (!names || names.length === 0) return site.hosts;
  for (const n of names) if (!site.hosts.some((h) => h.name === n)) throw new UserError(`--host ${n}: no such host in the playbook (hosts: ${site.hosts.map((h) => h.name).join(', ')})`);
  return site.hosts.filter((h) => names.includes(h.name));
}

/** Desired state of a host for each OS family it may turn out to be. */
function candidates(site: Site, host: Host): Partial<Record<OsFamily, DesiredHost>> {
  const credentials = resolveCredentials(site);
  const fams: OsFamily[] = host.os === 'auto' ? ['debian', 'rhel'] : [host.os];
  const out: Partial<Record<OsFamily, DesiredHost>> = {};
  for (const f of fams) out[f] = renderHosts(site, { hosts: [host.name], detectedOs: new Map([[host.name, f]]), credentials })[0]!;
  return out;
}

const message = (e: unknown) => (e instanceof UserError ? e.message : `internal error: ${(e as Error)?.stack ?? String(e)}`);

/** Connect to every selected host and plan it. Connections stay open for apply; close them with closeAll. */
export async function planSite(site: Site, opts: SiteRunOptions): Promise<Array<{ host: Host; planned?: Planned; error?: string }>> {
  const hosts = selectHosts(site, opts.hosts);
  return Promise.all(
    hosts.map(async (host) => {
      let conn: Connection | undefined;
      try {
        opts.progress(host.name, 'connecting');
        conn = await opts.connect(opts.target(host));
        const planned = await planHost(host, conn, candidates(site, host), opts.progress);
        planned.reconnect = () => opts.connect(opts.target(host));
        opts.progress(host.name, planned.plan.changes.length ? `${planned.plan.changes.length} changes planned` : 'up to date');
        return { host, planned };
      } catch (e) {
        await conn?.close().catch(() => undefined);
        opts.progress(host.name, 'failed');
        return { host, error: message(e) };
      }
    }),
  );
}

export async function applyPlanned(site: Site, planned: Array<{ host: Host; planned?: Planned; error?: string }>, opts: Pick<SiteRunOptions, 'progress'>): Promise<HostOutcome[]> {
  const digest = playbookDigest(site);
  return Promise.all(
    planned.map(async ({ host, planned: p, error }) => {
      if (!p) return { name: host.name, ok: false, changes: 0, error: error ?? 'not planned' };
      try {
        const r = await applyHost(p, digest, opts.progress);
        opts.progress(host.name, r.error ? 'failed' : p.plan.changes.length ? `${p.plan.changes.length} changes applied` : 'up to date');
        return { name: host.name, ok: !r.error, changes: r.error ? 0 : p.plan.changes.length, plan: p.plan, dkim: r.report.dkim.length ? r.report.dkim : dkimFromFacts(p), ...tlsOf(r.report.tlsFingerprint ?? p.facts.tlsFingerprint), ...(r.report.warnings.length ? { warnings: r.report.warnings } : {}), ...(r.error ? { error: r.error } : {}) };
      } catch (e) {
        opts.progress(host.name, 'failed');
        return { name: host.name, ok: false, changes: 0, plan: p.plan, error: message(e) };
      }
    }),
  );
}

const tlsOf = (f: string | undefined) => (f ? { tlsFingerprint: f } : {});

function dkimFromFacts(p: Planned): HostOutcome['dkim'] {
  return Object.entries(p.facts.dkim).map(([record, k]) => ({ domain: record.slice(record.indexOf('._domainkey.') + 12), ...k }));
}

export async function closeAll(planned: Array<{ planned?: Planned }>): Promise<void> {
  await Promise.all(planned.map((p) => p.planned?.conn.close().catch(() => undefined)));
}

/** The state as the hosts are now (before any apply): the DKIM keys and certificates their facts show. */
export function planState(site: Site, state: SiteState, planned: Array<{ host: Host; planned?: Planned }>): SiteState {
  const outcomes: HostOutcome[] = planned.flatMap((p) => (p.planned ? [{ name: p.host.name, ok: true, changes: 0, dkim: dkimFromFacts(p.planned), ...tlsOf(p.planned.facts.tlsFingerprint) }] : []));
  return recordDkim(state, outcomes, site);
}

/** Record the DKIM public keys the hosts hold and their certificates' fingerprints in the site state (public data). */
export function recordDkim(state: SiteState, outcomes: HostOutcome[], site?: Site): SiteState {
  const next: SiteState = { ...state, dkim: { ...state.dkim }, tls: { ...state.tls } };
  for (const o of outcomes) for (const k of o.dkim ?? []) next.dkim[`${k.selector}._domainkey.${k.domain}`] = { selector: k.selector, algorithm: k.algorithm, publicKey: k.publicKey };
  for (const o of outcomes) {
    const hostname = site?.hosts.find((h) => h.name === o.name)?.hostname;
    if (hostname && o.tlsFingerprint) next.tls[hostname] = o.tlsFingerprint;
  }
  return next;
}
