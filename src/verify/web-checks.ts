/**
 * The HTTPS checks of the client host (the first mailbox host, when the site serves autoconfiguration or
 * an MTA-STS policy): for every domain, each name's certificate (trusted, or with tls.mode self-signed
 * exactly the host's recorded one), every file and answer the playbook makes (web.ts), 404 everywhere
 * else; and, with DNS, the policy's mx: lines against the MX records served and the _mta-sts id against
 * the policy served.
 */
import { mtaStsId, mtaStsPolicy } from '../clients/autoconfig.js';
import type { Site } from '../model/site.js';
import { webNames } from '../render/names.js';
import { failed, ok, tlsDetail } from './checks.js';
import type { Endpoint, HostCheck, HostTarget, Outcome, VerifyOptions } from './checks.js';
import { lookup } from './dns.js';
import type { DnsResolver, Run } from './dns.js';
import { httpsFetch } from './https.js';
import { POLICY_PATH, autodiscoverDifference, bodyDifference, hostNameProbe, mxDifference, notFoundProbes, policyMx, stsRecordId, webResources } from './web.js';
import type { WebResource } from './web.js';

async function resourceCheck(t: HostTarget, r: WebResource): Promise<Outcome> {
  const a = await httpsFetch(t.ep, r.name, r.path, { method: r.method, ...(r.body !== undefined ? { body: r.body } : {}), ...(t.opts.timeoutMs ? { timeoutMs: t.opts.timeoutMs } : {}) });
  const fix = 'run mailops apply (it writes what the endpoint serves)';
  if (a.status !== 200) return failed(`${r.method} answered ${a.status}, not 200: ${fix}`);
  if (a.type !== r.type) return failed(`served as ${a.type || 'no Content-Type'}, not ${r.type} (clients may refuse it)`);
  if (r.expect.kind === 'autodiscover') {
    const problems = autodiscoverDifference(r.expect.body, a.body);
    if (problems.length) return failed(`the answer differs from the playbook's: ${problems.join('; ')}: ${fix}`);
    return ok(`200 ${a.type}, the playbook's servers, ports and TLS`);
  }
  const diff = bodyDifference(r.expect.body, a.body);
  if (diff) return failed(`${diff}: ${fix}`);
  return ok(`200 ${a.type}, ${Buffer.byteLength(a.body)} bytes, exactly the playbook's`);
}

/** Every URL must answer 404; the detail names those that did not. */
async function notFoundCheck(t: HostTarget, probes: Array<{ name: string; path: string }>): Promise<Outcome> {
  const wrong: string[] = [];
  for (const p of probes) {
    const a = await httpsFetch(t.ep, p.name, p.path, t.opts.timeoutMs ? { timeoutMs: t.opts.timeoutMs } : {});
    if (a.status !== 404) wrong.push(`https://${p.name}${p.path} answered ${a.status}`);
  }
  if (wrong.length) return failed(`${wrong.join('; ')}: only the playbook's files may answer (is /etc/nginx/nginx.conf the one mailops wrote?)`);
  return ok(`404 for ${probes.map((p) => `https://${p.name}${p.path}`).join(', ')}`);
}

export function webChecks(t: HostTarget): HostCheck[] {
  const checks: HostCheck[] = [];
  const timeout = t.opts.timeoutMs ? { timeoutMs: t.opts.timeoutMs } : {};
  for (const d of t.site.domains) {
    for (const name of webNames(t.site, d)) {
      checks.push({ name: `HTTPS certificate: ${name}`, run: async () => tlsDetail((await httpsFetch(t.ep, name, '/', timeout)).tls, t.host, t.site, t.state, name) });
    }
    for (const r of webResources(t.site, d)) checks.push({ name: r.check, run: () => resourceCheck(t, r) });
    checks.push({ name: `HTTPS answers nothing else: ${d.name}`, run: () => notFoundCheck(t, notFoundProbes(t.site, d)) });
  }
  checks.push({ name: `HTTPS answers nothing else: ${t.host.hostname}`, run: () => notFoundCheck(t, [hostNameProbe(t.host)]) });
  return checks;
}

/**
 * With DNS (run as the other DNS checks, so skipped alike when no resolver answers): for every domain, the
 * policy that mta-sts.<domain> serves lists exactly the MX hosts DNS serves, and the _mta-sts TXT id is the
 * id of that policy (senders fetch the policy again only when the id changes).
 */
export async function mtaStsChecks(site: Site, ep: Endpoint, opts: VerifyOptions, r: DnsResolver, run: Run): Promise<void> {
  if (site.stack.mtaSts === 'none') return;
  for (const d of site.domains) {
    const name = `mta-sts.${d.name}`;
    let served: Promise<{ text: string } | { error: string }> | undefined;
    // Fetched once, when the first of the two checks runs (not at all when they are skipped).
    const policy = () =>
      (served ??= httpsFetch(ep, name, POLICY_PATH, opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}).then(
        (a) => (a.status === 200 ? { text: a.body } : { error: `https://${name}${POLICY_PATH} answered ${a.status}` }),
        (e: Error) => ({ error: e.message }),
      ));
    const unfetched = (error: string) => failed(`the policy could not be fetched, so there is nothing to compare: ${error}`);
    await run(d.name, `MTA-STS policy lists the MX of ${d.name}`, async () => {
      const p = await policy();
      if ('error' in p) return unfetched(p.error);
      const text = p.text;
      // In preference order, as senders try them ("10 mx1.example.com." → mx1.example.com).
      const mx = (await lookup(r, d.name, 'MX'))
        .map((m) => m.split(' '))
        .sort((a, b) => Number(a[0]) - Number(b[0]) || (a[1] ?? '').localeCompare(b[1] ?? ''))
        .map((m) => (m[1] ?? '').replace(/\.$/, ''));
      const patterns = policyMx(text);
      const problems = mxDifference(patterns, mx);
      if (problems.length) return failed(`${problems.join('; ')} (policy: ${patterns.join(', ') || 'no mx: line'}; MX: ${mx.join(', ') || 'none'})`);
      return ok(`mx: ${patterns.join(', ')} = MX ${mx.join(', ')}`);
    });
    await run(d.name, `MTA-STS id of ${d.name} is the policy's`, async () => {
      const p = await policy();
      if ('error' in p) return unfetched(p.error);
      const id = mtaStsId(p.text);
      const txt = (await lookup(r, `_mta-sts.${d.name}`, 'TXT')).filter((v) => /^v=STSv1\b/i.test(v));
      if (txt.length === 0) return failed(`_mta-sts.${d.name} has no v=STSv1 TXT record: senders never look for the policy; publish the zone (mailops dns, or apply with dns.update)`);
      if (txt.length > 1) return failed(`_mta-sts.${d.name} has ${txt.length} v=STSv1 records; senders ignore them all: ${txt.join(' | ')}`);
      const published = stsRecordId(txt[0]!);
      const fix = p.text === mtaStsPolicy(site)?.text ? 'publish the zone (mailops dns, or apply with dns.update)' : `the policy served is not the playbook's (see the check HTTPS MTA-STS policy): run mailops apply`;
      if (published !== id) return failed(`_mta-sts.${d.name} says id=${published ?? '(none)'}, the policy served has id ${id}: senders keep a stale policy until the id changes; ${fix}`);
      return ok(`id=${id}, the digest of the policy served`);
    });
  }
}
