/**
 * Which checks a host gets, by its role and what it serves, and running them. A mailbox host: SMTP on 25,
 * submission (587 STARTTLS, 465 TLS, AUTH only after TLS, a real login), IMAP/POP3 per the playbook. A
 * backup MX listens on port 25 only and has no logins: the port-25 checks, and that it accepts the
 * recipients the mailbox hosts accept and refuses every other. The client host (the first mailbox host)
 * also gets the HTTPS checks when the site serves autoconfiguration or an MTA-STS policy.
 */
import type { Host, Site } from '../model/site.js';
import { clientHost, servesWeb } from '../render/names.js';
import type { SiteState } from '../state/state.js';
import { backupRecipientChecks } from './backup.js';
import { authAfterTlsCheck, bannerCheck, cleartextLoginChecks, failed, implicitTlsChecks, openRelayCheck, senders, startTlsCheck, submissionCheck, vrfyCheck } from './checks.js';
import type { CheckResult, Endpoint, HostCheck, HostTarget, Outcome, VerifyOptions } from './checks.js';
import { webChecks } from './web-checks.js';

/** Whether the host serves the HTTPS endpoint (autoconfiguration, the MTA-STS policy). */
export const servesWebHere = (site: Site, host: Host): boolean => servesWeb(site) && clientHost(site).name === host.name;

/** The checks of a host, in order. Nothing runs until a check's `run` is called. */
export function hostChecks(site: Site, state: SiteState, host: Host, ep: Endpoint, opts: VerifyOptions = {}): HostCheck[] {
  const t: HostTarget = { site, state, host, ep, opts };
  const port25 = [bannerCheck(t), startTlsCheck(t, 25)];
  const relayAndVrfy = [openRelayCheck(t), vrfyCheck(t)];
  if (host.role === 'backup-mx') return [...port25, ...relayAndVrfy, ...backupRecipientChecks(t)];
  return [
    ...port25,
    startTlsCheck(t, 587),
    ...implicitTlsChecks(t),
    authAfterTlsCheck(t),
    ...relayAndVrfy,
    ...cleartextLoginChecks(t),
    // Only when some mailbox may log in and send.
    ...(senders(site).length ? [submissionCheck(t)] : []),
    ...(servesWebHere(site, host) ? webChecks(t) : []),
  ];
}

export async function verifyHost(site: Site, state: SiteState, host: Host, ep: Endpoint, opts: VerifyOptions = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const c of hostChecks(site, state, host, ep, opts)) {
    let o: Outcome;
    try {
      o = await c.run();
    } catch (e) {
      o = failed((e as Error).message);
    }
    results.push({ host: host.name, name: c.name, ...o });
  }
  return results;
}
