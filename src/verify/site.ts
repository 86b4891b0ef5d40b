/** verify over every selected host, in parallel, and the DNS of the site, once. */
import { Resolver } from 'node:dns/promises';
import type { Host, Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';
import type { CheckResult, Endpoint, Status, VerifyOptions } from './checks.js';
import { hostAddressChecks, ptrChecks, zoneChecks } from './dns.js';
import type { DnsResolver, Run } from './dns.js';
import { servesWebHere, verifyHost } from './host.js';
import { relayCheck } from './relay.js';
import { replicationChecks } from './replication.js';
import { mtaStsChecks } from './web-checks.js';

export async function verifySite(site: Site, state: SiteState, hosts: Host[], endpoint: (h: Host) => Endpoint, opts: VerifyOptions = {}): Promise<CheckResult[]> {
  const per = await Promise.all(hosts.map((h) => verifyHost(site, state, h, endpoint(h), opts)));
  return [...per.flat(), ...(await replicationChecks(site, state, hosts, endpoint, opts)), ...(await relayCheck(site, opts)), ...(await dnsChecks(site, state, hosts, endpoint, opts))];
}

/**
 * With a resolver given (--resolver, the sandbox's DNS server), every DNS check runs and one that
 * cannot get an answer fails. With the system's resolver, the checks are skipped when it cannot reach
 * the public DNS at all (as in an offline CI), and say how to run them.
 */
async function dnsChecks(site: Site, state: SiteState, hosts: Host[], endpoint: (h: Host) => Endpoint, opts: VerifyOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const given = opts.resolver !== undefined;
  const r: DnsResolver = opts.resolver ?? new Resolver({ timeout: 3000, tries: 1 });
  let skip: string | undefined;
  if (!given) {
    try {
      await r.resolveNs('.');
    } catch {
      skip = 'public DNS cannot be reached from here; give a resolver that answers for the zones: --resolver IP[:PORT]';
    }
  }
  const run: Run = async (subject, name, f) => {
    let o: { status: Status; detail: string };
    if (skip) o = { status: 'skipped', detail: skip };
    else {
      try {
        o = await f();
      } catch (e) {
        o = { status: 'failed', detail: `${(e as Error).message}${opts.resolverName ? ` (resolver ${opts.resolverName})` : ''}` };
      }
    }
    results.push({ host: subject, name, ...o });
  };
  await zoneChecks(site, state, r, run);
  for (const h of hosts) {
    await hostAddressChecks(h, r, run);
    await ptrChecks(h, r, run);
  }
  // The MTA-STS policy served against DNS: when the host that serves it is among those verified.
  const web = hosts.find((h) => servesWebHere(site, h));
  if (web) await mtaStsChecks(site, endpoint(web), opts, r, run);
  return results;
}
