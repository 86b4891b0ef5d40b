/**
 * Replication proven over the wire, both ways: a message appended over IMAP on one mailbox host (flagged
 * \Seen, so no client shows it as new) must be found on the other host within REPLICATION_MS; then it is
 * flagged \Deleted and expunged where it was appended, as a mail client deletes, and where it arrived.
 * (Dovecot 2.3's replicator is told of a session's changes when a flag changes or a message comes, not of
 * an expunge alone, so it may carry the \Deleted flag over before the expunge of the same session, and the
 * message would stay on the other host until that user's next sync.) Whatever pushes the changes (Dovecot's replicator, or
 * mailops-replica-push), a broken certificate pin, a closed doveadm port or a push that stopped shows here,
 * not first as mail missing on one host.
 *
 * Run only when both mailbox hosts are verified and the site has IMAP (nothing else can put a message in a
 * mailbox without sending mail). The password is sent only over TLS the check trusts, as every login of verify.
 */
import type { Host, Site } from '../model/site.js';
import { imapQuote as q, imapSession } from '../probe/mail.js';
import type { ImapCmd } from '../probe/mail.js';
import type { SiteState } from '../state/state.js';
import { failed, ok, readableLogin, skipped, tlsDetail } from './checks.js';
import type { CheckResult, Endpoint, Outcome, VerifyOptions } from './checks.js';
import type { Wire } from './wire.js';

/** How long a change may take to reach the other host. */
export const REPLICATION_MS = 30_000;

/** An IMAPS session logged in as `login`, after the TLS check passed (else it throws with what was wrong). */
async function imap<T>(site: Site, state: SiteState, host: Host, ep: Endpoint, opts: VerifyOptions, login: { user: string; password: string }, f: (cmd: ImapCmd) => Promise<T>): Promise<T> {
  const trust = (w: Wire) => {
    const t = tlsDetail(w.tlsInfo!, host, site, state);
    if (t.status !== 'ok') throw new Error(`the password was not sent: ${t.detail}`);
  };
  try {
    return await imapSession({ host: ep.address, port: ep.port, servername: host.hostname }, login.user, login.password, f, { trust, timeoutMs: opts.timeoutMs ?? 10000 });
  } catch (e) {
    throw new Error(`${host.name}: ${(e as Error).message}`);
  }
}

/** UIDs of the INBOX messages whose subject carries `token` (deleted ones too). */
async function uidsOf(cmd: ImapCmd, token: string): Promise<string[]> {
  const lines = await cmd(`UID SEARCH SUBJECT ${q(token)}`);
  return (lines.find((l) => l.startsWith('* SEARCH'))?.slice('* SEARCH'.length).trim() ?? '').split(/\s+/).filter(Boolean);
}

/** One direction: appended on `from`, looked for on `to`, expunged on `from`. */
async function oneWay(site: Site, state: SiteState, from: Host, to: Host, endpoint: (h: Host) => Endpoint, opts: VerifyOptions, login: { user: string; password: string }, wait: number): Promise<Outcome> {
  const token = `mailops-verify-replication-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const message = [`From: <${login.user}>`, `To: <${login.user}>`, `Subject: ${token}`, `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`, `Message-ID: <${token}@${from.hostname}>`, '', `mailops verify: replication from ${from.hostname} to ${to.hostname}. This message removes itself.`, ''].join('\r\n');
  await imap(site, state, from, endpoint(from), opts, login, async (cmd) => {
    await cmd(`APPEND INBOX (\\Seen) {${Buffer.byteLength(message)}+}\r\n${message}`);
  });
  const t0 = Date.now();
  let seen = false;
  let last = '';
  let cleanup = '';
  try {
    for (;;) {
      try {
        seen = await imap(site, state, to, endpoint(to), opts, login, async (cmd) => {
          await cmd('EXAMINE INBOX');
          return (await uidsOf(cmd, token)).length > 0;
        });
        last = '';
      } catch (e) {
        last = (e as Error).message;
      }
      if (seen || Date.now() - t0 >= wait) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    // The message goes again: on the host it was appended on, and on the other one if it got there, so that
    // its removal does not hang on the expunge replicating (see above).
    for (const h of seen ? [from, to] : [from]) {
      await imap(site, state, h, endpoint(h), opts, login, async (cmd) => {
        await cmd('SELECT INBOX');
        const uids = await uidsOf(cmd, token);
        if (!uids.length) {
          if (h === from) throw new Error(`it is not in INBOX on ${from.name} any more`);
          return;
        }
        await cmd(`UID STORE ${uids.join(',')} +FLAGS.SILENT (\\Deleted)`);
        await cmd(`UID EXPUNGE ${uids.join(',')}`);
      }).catch((e: Error) => {
        cleanup ||= `; it could not be expunged again (${e.message}): delete the message "${token}" of ${login.user} by hand`;
      });
    }
  }
  const s = ((Date.now() - t0) / 1000).toFixed(1);
  if (!seen) return failed(`a message appended over IMAP as ${login.user} on ${from.name} was not on ${to.name} after ${s} s${last ? ` (${last})` : ''}: the replication from ${from.name} to ${to.name} does not work${cleanup}`);
  if (cleanup) return failed(`a message appended over IMAP as ${login.user} on ${from.name} was on ${to.name} after ${s} s${cleanup}`);
  return ok(`a message appended over IMAP as ${login.user} on ${from.name} was on ${to.name} after ${s} s (then expunged)`);
}

export async function replicationChecks(site: Site, state: SiteState, hosts: Host[], endpoint: (h: Host) => Endpoint, opts: VerifyOptions = {}, wait = REPLICATION_MS): Promise<CheckResult[]> {
  if (!site.stack.replication || !site.stack.imap) return [];
  const pair = site.hosts.filter((h) => h.role !== 'backup-mx');
  if (pair.length !== 2 || !pair.every((h) => hosts.some((x) => x.name === h.name))) return [];
  const [a, b] = pair as [Host, Host];
  // Any mailbox that may log in (an IMAP login needs no right to send).
  const login = readableLogin(site.domains.flatMap((d) => d.mailboxes).filter((m) => m.enabled));
  const out: CheckResult[] = [];
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    const name = `replication ${from.name} → ${to.name}`;
    let o: Outcome;
    if (!login) o = skipped('no mailbox has a password mailops can read (password: { env } or { file }): nothing to log in with');
    else {
      try {
        o = await oneWay(site, state, from, to, endpoint, opts, login, wait);
      } catch (e) {
        o = failed((e as Error).message);
      }
    }
    out.push({ host: from.name, name, ...o });
  }
  return out;
}
