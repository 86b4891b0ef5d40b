/** Render a whole site: the desired state of every host and the zone of every domain. */
import { loadComponents } from '../components/load.js';
import { desiredHost } from '../components/engine.js';
import type { ComponentSpec } from '../components/types.js';
import type { DesiredHost } from '../model/desired.js';
import type { Host, OsFamily, Site } from '../model/site.js';
import { profileOf, profiles } from '../os/index.js';
import type { Platform } from '../os/index.js';
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
  /**
   * What plan/apply found each host to be: its family (for a host whose playbook says `auto`; render
   * assumes debian), and the Dovecot of its release (render assumes the family's older one, 2.3).
   */
  detectedOs?: ReadonlyMap<string, OsFamily | Platform>;
  credentials?: Credentials;
  components?: ComponentSpec[];
  /** The DKIM lifecycle of each host (by name); a fresh host's first keys when absent. */
  dkim?: ReadonlyMap<string, DkimPlan>;
  /** Certificate fingerprints recorded in the site state, by host name. */
  tls?: Readonly<Record<string, string>>;
  /** The Dovecot generation recorded in the site state, by host name (replication looks at the other host's). */
  dovecots?: Readonly<Record<string, string>>;
}

export interface RenderedSite {
  hosts: DesiredHost[];
  zones: RenderedZone[];
}

function hostPlatform(site: Site, name: string, detected?: ReadonlyMap<string, OsFamily | Platform>): Platform {
  const h = site.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`internal: unknown host ${name}`);
  const d = detected?.get(name);
  const found: Platform | undefined = typeof d === 'string' ? { family: d, dovecot: profiles[d].dovecot } : d;
  const family = h.os !== 'auto' ? h.os : (found?.family ?? 'debian');
  return { family, dovecot: found?.family === family ? found.dovecot : profiles[family].dovecot };
}

export function renderHosts(site: Site, opts: RenderOptions = {}): DesiredHost[] {
  const specs = opts.components ?? loadComponents();
  const credentials = opts.credentials ?? resolveCredentials(site);
  const wanted = opts.hosts && opts.hosts.length > 0 ? new Set(opts.hosts) : null;
  return site.hosts
    .filter((h) => !wanted || wanted.has(h.name))
    .map((h) => desiredHost(buildContext(site, h, profileOf(hostPlatform(site, h.name, opts.detectedOs)), credentials, opts.dkim?.get(h.name), opts.tls, opts.dovecots), specs));
}

/** Hosts as the state file records their DKIM keys (render has no facts), and the zones. */
export function renderSite(site: Site, state: SiteState, opts: RenderOptions = {}): RenderedSite {
  const now = Math.floor(clock().getTime() / 1000);
  const dkim = opts.dkim ?? new Map(site.hosts.map((h) => [h.name, stateDkim(site, h, state, now)]));
  return { hosts: renderHosts(site, { detectedOs: new Map(site.hosts.map((h) => [h.name, recordedPlatform(h, state)])), ...opts, dkim, tls: state.tls, dovecots: state.dovecot ?? {} }), zones: renderZones(site, state) };
}

/**
 * What the state recorded of a host at the last apply: its family (the playbook's, else the one found; debian
 * when none was) and its Dovecot (else the family's older one).
 */
export function recordedPlatform(h: Host, state: SiteState | undefined): Platform {
  const family = h.os !== 'auto' ? h.os : (state?.families?.[h.name] ?? 'debian');
  return { family, dovecot: state?.dovecot?.[h.name] ?? profiles[family].dovecot };
}
