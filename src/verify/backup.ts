/**
 * The recipient checks of a backup MX: it accepts, at RCPT, the recipients the mailbox hosts accept, and
 * refuses every other address of the playbook's domains with the exact reply of both MTAs, so it never
 * takes mail it cannot deliver (and would bounce, often to a forged sender). No mail is sent: each
 * session ends with RSET after RCPT.
 */
import type { Site } from '../model/site.js';
import { backupMxView } from '../render/context.js';
import { PROBE_SENDER, failed, ok, session, skipped, smtpHello } from './checks.js';
import type { HostCheck, HostTarget, Outcome } from './checks.js';
import { oneLine } from './wire.js';

/** What a backup MX answers, from Postfix and Exim alike, for a recipient it must not accept. */
export const unknownRecipientReply = (address: string) => `550 5.1.1 <${address}>: Recipient address rejected: User unknown in relay recipient table`;

/** The addresses to try on a backup MX, per domain: one it must accept, one it must refuse; or why not. Pure. */
export interface RecipientProbe {
  domain: string;
  known: string | { skip: string };
  unknown: string | { skip: string };
}

export function recipientProbes(site: Site): RecipientProbe[] {
  const accepted = backupMxView(site).recipients;
  return site.domains.map((d) => {
    const domain = d.name.toLowerCase();
    const ofDomain = accepted.filter((a) => a.endsWith(`@${domain}`));
    const catchAll = ofDomain.includes(`@${domain}`);
    let unknown = `mailops-verify-unknown@${domain}`;
    for (let i = 2; ofDomain.includes(unknown); i++) unknown = `mailops-verify-unknown-${i}@${domain}`;
    const explicit = ofDomain.find((a) => !a.startsWith('@'));
    return {
      domain: d.name,
      known: explicit ?? (catchAll ? unknown : { skip: `${d.name} has no recipient the mailbox hosts accept (no enabled mailbox, alias or catch-all): the backup MX refuses all its mail` }),
      unknown: catchAll ? { skip: `${d.name} has a catch-all: the backup MX accepts every address of it, as the mailbox hosts do` } : unknown,
    };
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
  return recipientProbes(t.site).flatMap((p): HostCheck[] => [
    {
      name: `backup MX accepts a recipient of ${p.domain} at RCPT`,
      run: async (): Promise<Outcome> => {
        if (typeof p.known !== 'string') return skipped(p.known.skip);
        const r = await rcpt(t, p.known);
        if (r.code >= 200 && r.code < 300) return ok(`RCPT TO:<${p.known}>: "${r.text}" (then RSET: nothing sent)`);
        return failed(`RCPT TO:<${p.known}> answered "${r.text}": the backup MX refuses mail for an address the mailbox hosts accept, so senders keep it until a mailbox host answers; run mailops apply (it writes the backup's recipient list)`);
      },
    },
    {
      name: `backup MX refuses an unknown recipient of ${p.domain} at RCPT`,
      run: async (): Promise<Outcome> => {
        if (typeof p.unknown !== 'string') return skipped(p.unknown.skip);
        const want = unknownRecipientReply(p.unknown);
        const r = await rcpt(t, p.unknown);
        if (r.text === want) return ok(r.text);
        if (r.code < 400) return failed(`RCPT TO:<${p.unknown}> was ACCEPTED ("${r.text}"): the backup MX takes mail no mailbox host accepts and will bounce it later, often to a forged sender; run mailops apply (it writes the backup's recipient list)`);
        return failed(`RCPT TO:<${p.unknown}> answered "${r.text}", expected "${want}"${r.code < 500 ? ': a temporary refusal makes senders retry for days' : ''}`);
      },
    },
  ]);
}
