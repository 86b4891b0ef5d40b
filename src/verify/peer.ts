/**
 * Deliverability as a receiver judges it (the sandbox has one: a strict peer at peer.test): every
 * domain's mailbox submits a message to the peer through each mailbox host (a backup MX has no submission
 * and sends no mail of the domains), six messages at a time, and the peer's verdict must be dkim=pass
 * (every signature), spf=pass, dmarc=pass, HELO = PTR = host name, over TLS.
 */
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import type { Host, Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';
import { credentialFor, senders, session, smtpHello, tlsDetail } from './checks.js';
import type { CheckResult, Endpoint } from './checks.js';
import { judge, verdictOf } from './verdict.js';

export interface Peer {
  domain: string;
  hostname: string;
  /** Every raw message the peer accepted. */
  inbox(): Promise<string[]>;
}

/** Submits one message (587, STARTTLS, AUTH after checking the certificate); the reply to the end of DATA. */
async function submit(site: Site, state: SiteState, host: Host, ep: Endpoint, cred: { user: string; password: string }, to: string, body: string): Promise<string> {
  return session(ep, 587, host, { timeoutMs: 20000 }, false, async (w) => {
    await smtpHello(w);
    await w.smtp('STARTTLS');
    const trust = tlsDetail(await w.startTls(), host, site, state);
    if (trust.status !== 'ok') throw new Error(`the password was not sent: ${trust.detail}`);
    await w.smtp('EHLO verify.mailops.invalid');
    const steps = [`AUTH PLAIN ${Buffer.from(`\0${cred.user}\0${cred.password}`).toString('base64')}`, `MAIL FROM:<${cred.user}>`, `RCPT TO:<${to}>`, 'DATA'];
    for (const c of steps) {
      const r = await w.smtp(c);
      if (r.code >= 400) throw new Error(`${c.startsWith('AUTH') ? 'AUTH' : c} answered "${r.text}"`);
    }
    w.send(`${body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')}\r\n.`);
    const end = await w.smtpReply();
    await w.smtp('QUIT').catch(() => undefined);
    if (end.code !== 250) throw new Error(`the message was refused: "${end.text}"`);
    return end.text;
  });
}

/** How many messages are submitted and awaited at once. */
const LANES = 6;

/**
 * Waits for the message in the peer's inbox whose text includes `match` (or that `match` accepts), until
 * `until` (ms): every waiter shares one read of the inbox a second, however many wait.
 */
export function inboxWatch(peer: Pick<Peer, 'inbox'>): (match: string | ((raw: string) => boolean), until: number) => Promise<string | undefined> {
  let last: { at: number; read: Promise<string[]> } | undefined;
  return async (match, until) => {
    const ok = typeof match === 'string' ? (m: string) => m.includes(match) : match;
    for (;;) {
      if (!last || Date.now() - last.at >= 1000) last = { at: Date.now(), read: peer.inbox() };
      const at = last.at;
      const raw = (await last.read).find(ok);
      if (raw !== undefined || Date.now() >= until) return raw;
      await new Promise((r) => setTimeout(r, Math.max(50, at + 1000 - Date.now())));
    }
  };
}

export async function peerChecks(site: Site, state: SiteState, hosts: Host[], endpoint: (h: Host) => Endpoint, peer: Peer, timeoutMs = 45_000): Promise<CheckResult[]> {
  // Every mailbox host, every domain one of whose mailboxes may send (else it has nothing to deliver: no
  // check), in this order; the messages go LANES at a time.
  const pairs = hosts.filter((h) => h.role !== 'backup-mx').flatMap((host) => site.domains.filter((x) => senders(site, x.name).length > 0).map((d) => ({ host, d })));
  const arrived = inboxWatch(peer);
  const limit = pLimit(LANES);
  return Promise.all(
    pairs.map(({ host, d }) =>
      limit(async (): Promise<CheckResult> => {
        const name = `deliverability ${d.name} → ${peer.domain}`;
        const cred = credentialFor(site, d.name);
        if (!cred) return { host: host.name, name, status: 'skipped', detail: `no mailbox of ${d.name} has a password mailops can read (password: { env } or { file })` };
        const id = `${Date.now()}.${randomBytes(6).toString('hex')}@${d.name}`;
        const to = `verify@${peer.domain}`;
        const body = [`From: <${cred.user}>`, `To: <${to}>`, `Subject: mailops verify: deliverability of ${d.name}`, `Message-ID: <${id}>`, `Date: ${new Date().toUTCString()}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', `Sent by mailops verify through ${host.hostname}.`, ''].join('\r\n');
        try {
          await submit(site, state, host, endpoint(host), cred, to, body);
          const raw = await arrived(id, Date.now() + timeoutMs);
          if (!raw) return { host: host.name, name, status: 'failed', detail: `${cred.user} → ${to}: not in the peer's inbox after ${timeoutMs / 1000} s (refused or still queued on ${host.name}: see its mail log)` };
          const { problems, summary } = judge(verdictOf(raw, peer.hostname), d.name, host.hostname, { signs: d.dkim !== undefined, relayed: site.stack.relay !== undefined });
          return { host: host.name, name, status: problems.length ? 'failed' : 'ok', detail: problems.length ? `${problems.join('; ')} — the peer saw: ${summary}` : `the peer's verdict: ${summary}` };
        } catch (e) {
          return { host: host.name, name, status: 'failed', detail: `${cred.user} → ${to}: ${(e as Error).message}` };
        }
      }),
    ),
  );
}
