/**
 * The recipient checks of a backup MX: it accepts, at RCPT, the recipients the mailbox hosts accept, and
 * refuses every other address of the playbook's domains with the exact reply of both MTAs, so it never
 * takes mail it cannot deliver (and would bounce, often to a forged sender). No mail is sent: each
 * session ends with RSET after RCPT.
 */
import type { Site } from '../model/site.js';
import { backupMxView } from '../render/context.js';
import { PROBE_SENDER, failed, ok, session, smtpHello } from './checks.js';
import type { HostCheck, HostTarget, Outcome } from './checks.js';
import { oneLine } from './wire.js';

/** What a backup MX answers, from Postfix and Exim alike, for a recipient it must not accept. */
export const unknownRecipientReply = (address: string) => `550 5.1.1 <${address}>: Recipient address rejected: User unknown in relay recipient table`;

/**
 * The addresses to try on a backup MX, per domain: a recipient the mailbox hosts accept (when there is
 * one); then an address no one has, which it must refuse, or, for a domain with a catch-all, accept.
 * Every probe applies: none is a skip. Pure.
 */
export interface RecipientProbe {
  domain: string;
  address: string;
  accept: boolean;
  name: string;
}

export function recipientProbes(site: Site): RecipientProbe[] {
  const accepted = backupMxView(site).recipients;
  return site.domains.flatMap((d) => {
    const domain = d.name.toLowerCase();
    const ofDomain = accepted.filter((a) => a.endsWith(`@${domain}`));
    let unknown = `mailops-verify-unknown@${domain}`;
    for (let i = 2; ofDomain.includes(unknown); i++) unknown = `mailops-verify-unknown-${i}@${domain}`;
    const explicit = ofDomain.find((a) => !a.startsWith('@'));
    return [
      ...(explicit ? [{ domain: d.name, address: explicit, accept: true, name: `backup MX accepts a recipient of ${d.name} at RCPT` }] : []),
      ofDomain.includes(`@${domain}`)
        ? { domain: d.name, address: unknown, accept: true, name: `backup MX accepts any address of ${d.name} at RCPT (its catch-all)` }
        : { domain: d.name, address: unknown, accept: false, name: `backup MX refuses an unknown recipient of ${d.name} at RCPT` },
    ];
  });
}

/** MAIL FROM, RCPT TO:<address>, RSET: the reply to RCPT, on one line. */
async function rcpt(t: HostTarget, address: string): Promise<{ code: number; text: string }> {
  return session(t.ep, 25, t.host, t.opts, false, async (w) => {
    await smtpHello(w);
    const m = await w.smtp(`MAIL FROM:<${PROBE_SENDER}>`);
    if (m.code !== 250) throw new Error(`MAIL FROM:<${PROBE_SENDER}> answered "${oneLine(m)}"`);
    const r = await w.smtp(`RCPT TO:<${address}>`);
    await w.smtp('RSET');
    return { code: r.code, text: oneLine(r) };
  });
}

export function backupRecipientChecks(t: HostTarget): HostCheck[] {
  return recipientProbes(t.site).map(
    (p): HostCheck => ({
      name: p.name,
      run: async (): Promise<Outcome> => {
        const r = await rcpt(t, p.address);
        if (p.accept) {
          if (r.code >= 200 && r.code < 300) return ok(`RCPT TO:<${p.address}>: "${r.text}" (then RSET: nothing sent)`);
          return failed(`RCPT TO:<${p.address}> answered "${r.text}": the backup MX refuses mail for an address the mailbox hosts accept, so senders keep it until a mailbox host answers; run mailops apply (it writes the backup's recipient list)`);
        }
        const want = unknownRecipientReply(p.address);
        if (r.text === want) return ok(r.text);
        if (r.code < 400) return failed(`RCPT TO:<${p.address}> was ACCEPTED ("${r.text}"): the backup MX takes mail no mailbox host accepts and will bounce it later, often to a forged sender; run mailops apply (it writes the backup's recipient list)`);
        return failed(`RCPT TO:<${p.address}> answered "${r.text}", expected "${want}"${r.code < 500 ? ': a temporary refusal makes senders retry for days' : ''}`);
      },
    }),
  );
}
