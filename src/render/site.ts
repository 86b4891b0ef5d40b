/** Render a whole site: the desired state of every host and the zone of every domain. */
import { loadComponents } from '../components/load.js';
import { desiredHost } from '../components/engine.js';
import type { ComponentSpec } from '../components/types.js';
import type { DesiredHost } from '../model/desired.js';
import type { OsFamily, Site } from '../model/site.js';
import { profiles } from '../os/index.js';
import type { SiteState } from '../state/state.js';
import { clock, renderZones } from '../dns/zone.js';
import type { RenderedZone } from '../dns/zone.js';
import { buildContext } from './context.js';
import type { Credentials } from './context.js';
import { resolveCredentials } from './credentials.js';
import { stateDkim } from '../plan/dkim.js';
import type { DkimPlan } from '../plan/dkim.js';

export interface RenderOptions {
  /** Only these hosts (by name); all when empty. */
  hosts?: string[];
  /** OS family of hosts whose playbook says `auto` (detected by plan/apply; render assumes debian). */
  detectedOs?: ReadonlyMap<string, OsFamily>;
  credentials?: Credentials;
  components?: ComponentSpec[];
  /** The DKIM lifecycle of each host (by name); a fresh host's first keys when absent. */
  dkim?: ReadonlyMap<string, DkimPlan>;
  /** Certificate fingerprints recorded in the site state, by host name. */
  tls?: Readonly<Record<string, string>>;
}

export interface RenderedSite {
  hosts: DesiredHost[];
  zones: RenderedZone[];
}

export function hostFamily(site: Site, name: string, detected?: ReadonlyMap<string, OsFamily>): OsFamily {
  const h = site.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`internal: unknown host ${name}`);
  return h.os !== 'auto' ? h.os : (detected?.get(name) ?? 'debian');
}

export function renderHosts(site: Site, opts: RenderOptions = {}): DesiredHost[] {
  const specs = opts.components ?? loadComponents();
  const credentials = opts.credentials ?? resolveCredentials(site);
  const wanted = opts.hosts && opts.hosts.length > 0 ? new Set(opts.hosts) : null;
  return site.hosts
    .filter((h) => !wanted || wanted.has(h.name))
    .map((h) => desiredHost(buildContext(site, h, profiles[hostFamily(site, h.name, opts.detectedOs)], credentials, opts.dkim?.get(h.name), opts.tls), specs));
}

/** Hosts as the state file records their DKIM keys (render has no facts), and the zones. */
export function renderSite(site: Site, state: SiteState, opts: RenderOptions = {}): RenderedSite {
  const now = Math.floor(clock().getTime() / 1000);
  const dkim = opts.dkim ?? new Map(site.hosts.map((h) => [h.name, stateDkim(site, h, state, now)]));
  return { hosts: renderHosts(site, { ...opts, dkim, tls: state.tls }), zones: renderZones(site, state) };
}
