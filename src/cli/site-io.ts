/** Shared steps of the commands that read a playbook and its state. */
import type { RenderedZone } from '../dns/zone.js';
import { recordSerials } from '../dns/zone.js';
import type { Site } from '../model/site.js';
import { loadSite } from '../site/load.js';
import { readState, statePath, writeState } from '../state/state.js';
import type { SiteState } from '../state/state.js';
import { printDiagnostics, yellow, info } from './output.js';

/** `secrets: 'ignore'` for the commands that need no password (render, dns). */
export function load(file: string, opts: { secrets?: 'error' | 'ignore' } = {}): { site: Site; state: SiteState } {
  const { site, warnings } = loadSite(file, { secrets: opts.secrets ?? 'error' });
  printDiagnostics(warnings);
  return { site, state: readState(site.file) };
}

/** Remember the zones' serials so they only increase when the content changes. */
export function persistSerials(site: Site, state: SiteState, zones: RenderedZone[]): void {
  try {
    if (writeState(site.file, recordSerials(state, zones))) info(`recorded zone serials in ${statePath(site.file)}`);
  } catch (e) {
    info(yellow(`warning: could not record zone serials in ${statePath(site.file)}: ${(e as Error).message}`));
  }
}
