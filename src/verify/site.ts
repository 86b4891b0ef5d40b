/** verify over every selected host, in parallel. */
import type { Host, Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';
import { verifyHost } from './checks.js';
import type { CheckResult, Endpoint, VerifyOptions } from './checks.js';

export async function verifySite(site: Site, state: SiteState, hosts: Host[], endpoint: (h: Host) => Endpoint, opts: VerifyOptions = {}): Promise<CheckResult[]> {
  const per = await Promise.all(hosts.map((h) => verifyHost(site, state, h, endpoint(h), opts)));
  return per.flat();
}
