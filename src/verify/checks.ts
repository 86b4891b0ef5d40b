/**
 * Protocol-level checks of one mail host, shared by `mailops verify` and the test suite: the helpers every
 * check uses and the SMTP, IMAP and POP3 checks. Every check has a name, a status (ok / failed / skipped)
 * and a detail a person can act on; which checks a host gets is decided in host.ts.
 */
import type { Host, Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';
import { readSecret } from '../site/secrets.js';
import type { DnsResolver } from './dns.js';
import { certCovers, Wire } from './wire.js';
import type { TlsInfo } from './wire.js';

export type Status = 'ok' | 'failed' | 'skipped';

export interface CheckResult {
  host: string;
  name: string;
  status: Status;
  detail: string;
}

export interface Endpoint {
  /** Where to connect for a service port of the host (the sandbox maps ports to 127.0.0.1). */
  address: string;
  port(servicePort: number): number;
}

export interface VerifyOptions {
  /** Resolver for the DNS checks (--resolver, the sandbox's server); default: the system's. */
  resolver?: DnsResolver;
  /** Where the resolver asks, for messages ("127.0.0.1:5353"). */
  resolverName?: string;
  timeoutMs?: number;
}

export type Outcome = { status: Status; detail: string };
export const ok = (detail: string): Outcome => ({ status: 'ok', detail });
export const failed = (detail: string): Outcome => ({ status: 'failed', detail });
export const skipped = (detail: string): Outcome => ({ status: 'skipped', detail });

/** One check of a host: its name, and what runs it (a thrown error is a failure with its message). */
export interface HostCheck {
  name: string;
  run: () => Promise<Outcome>;
}

/** What every check of one host works with. */
export interface HostTarget {
  site: Site;
  state: SiteState;
  host: Host;
  ep: Endpoint;
  opts: VerifyOptions;
}

/**
 * Whether a TLS session may be trusted: a certificate for the name asked (the host name, or a name the
 * host serves such as autoconfig.example.com), TLS 1.2 or newer, and a chain the system trusts — or, only
 * with tls.mode self-signed, exactly the host's own certificate (the fingerprint `apply` recorded). The
 * authenticated checks send a password only when this is ok.
 */
export function tlsDetail(t: TlsInfo, host: Host, site: Site, state: SiteState, name = host.hostname): Outcome {
  if (!certCovers(t.subjectNames, name)) return failed(`certificate is for ${t.subjectNames.join(', ') || '(no name)'}, not ${name}`);
  if (t.protocol !== 'TLSv1.2' && t.protocol !== 'TLSv1.3') return failed(`negotiated ${t.protocol}; TLS 1.2 or newer is required`);
  if (!t.trusted) {
    if (site.stack.tls.mode !== 'self-signed') return failed(`${t.protocol}, certificate for ${name} is not trusted (${t.trustError ?? 'unknown issuer'})`);
    const own = state.tls[host.hostname];
    if (!own) return failed(`${t.protocol}, self-signed certificate, but no certificate of ${host.hostname} is recorded to compare it with: run mailops apply (it records the host's certificate)`);
    if (own !== t.fingerprint) return failed(`${t.protocol}, self-signed certificate that is NOT the host's own (SHA-256 ${t.fingerprint.slice(0, 16)}…, recorded ${own.slice(0, 16)}…): someone may be in the middle`);
    return ok(`${t.protocol}, the host's own self-signed certificate for ${name} (SHA-256 ${own.slice(0, 16)}…, tls.mode is self-signed)`);
  }
  return ok(`${t.protocol}, trusted certificate for ${name}, valid to ${t.validTo}`);
}

export async function session<T>(ep: Endpoint, port: number, host: Host, opts: VerifyOptions, tls: boolean, f: (w: Wire) => Promise<T>): Promise<T> {
  const w = await Wire.open({ host: ep.address, port: ep.port(port), tls, servername: host.hostname, timeoutMs: opts.timeoutMs ?? 10000 });
  try {
    return await f(w);
  } finally {
    w.close();
  }
}

/** Greeting and EHLO of an SMTP session; returns the EHLO keywords. */
export async function smtpHello(w: Wire, expectName?: string): Promise<{ banner: string; ehlo: string[] }> {
  const banner = await w.smtpReply();
  if (banner.code !== 220) throw new Error(`greeting was "${banner.text}"`);
  const e = await w.smtp('EHLO verify.mailops.invalid');
  if (e.code !== 250) throw new Error(`EHLO answered "${e.text}"`);
  if (expectName && e.lines[0]?.split(' ')[0] !== expectName) throw new Error(`EHLO name is "${e.lines[0]}", expected ${expectName}`);
  return { banner: banner.lines[0] ?? '', ehlo: e.lines.slice(1).map((l) => l.toUpperCase()) };
}

/**
 * The mailboxes that may log in and send (of one domain, or of the site). With none, the authenticated
 * sending checks do not apply: no one could do what they prove, so they are not run at all.
 */
export function senders(site: Site, domain?: string): Site['domains'][number]['mailboxes'] {
  return site.domains.filter((d) => domain === undefined || d.name === domain).flatMap((d) => d.mailboxes.filter((m) => m.enabled && m.send));
}

/**
 * A mailbox whose password mailops can read, for the authenticated checks: one that may log in and send
 * (never a disabled one or one with send: false), preferably one without a send_limit (whose count the
 * check would use up).
 */
export function credentialFor(site: Site, domain?: string): { user: string; password: string } | undefined {
  const candidates = senders(site, domain);
  return readableLogin([...candidates.filter((c) => !c.sendLimit), ...candidates.filter((c) => c.sendLimit)]);
}

/** The first of these mailboxes whose password mailops can read ({ env } or { file }), in this order. */
export function readableLogin(mailboxes: Site['domains'][number]['mailboxes']): { user: string; password: string } | undefined {
  for (const m of mailboxes.filter((x) => x.passwordSecret)) {
    try {
      return { user: m.address, password: readSecret(m.passwordSecret!, m.address) };
    } catch {
      /* unreadable: try the next one */
    }
  }
  return undefined;
}

/**
 * How many recipients verify submits as each login on one mailbox host: the deliverability message of each
 * domain (peer.ts) and the submission check's RCPT to itself (then RSET). A send_limit may count them all.
 */
export function verifySubmissions(site: Site): Map<string, number> {
  const out = new Map<string, number>();
  const add = (c: { user: string } | undefined) => c && out.set(c.user, (out.get(c.user) ?? 0) + 1);
  for (const d of site.domains) if (senders(site, d.name).length > 0) add(credentialFor(site, d.name));
  add(credentialFor(site));
  return out;
}

/** A session on a port of the target host. */
const on = <T>(t: HostTarget, port: number, tls: boolean, f: (w: Wire) => Promise<T>) => session(t.ep, port, t.host, t.opts, tls, f);

export function bannerCheck(t: HostTarget): HostCheck {
  const { hostname } = t.host;
  return {
    name: 'smtp banner and EHLO name',
    run: () =>
      on(t, 25, false, async (w) => {
        const { banner } = await smtpHello(w, hostname);
        if (!banner.startsWith(hostname)) return failed(`banner "${banner}" does not start with ${hostname}`);
        return ok(`220 ${banner}`);
      }),
  };
}

export function startTlsCheck(t: HostTarget, port: number): HostCheck {
  return {
    name: `STARTTLS on ${port}`,
    run: () =>
      on(t, port, false, async (w) => {
        const { ehlo } = await smtpHello(w);
        if (!ehlo.includes('STARTTLS')) return failed(`port ${port} does not offer STARTTLS`);
        const r = await w.smtp('STARTTLS');
        if (r.code !== 220) return failed(`STARTTLS answered "${r.text}"`);
        return tlsDetail(await w.startTls(), t.host, t.site, t.state);
      }),
  };
}

/** TLS from the first byte: submission on 465, and IMAP 993 / POP3 995 when the playbook has them. */
export function implicitTlsChecks(t: HostTarget): HostCheck[] {
  const s = t.site.stack;
  const implicit: Array<[number, string, boolean]> = [
    [465, 'SMTP submission', true],
    [993, 'IMAP', s.imap],
    [995, 'POP3', s.pop3],
  ];
  return implicit
    .filter(([, , enabled]) => enabled)
    .map(([port, what]) => ({
      name: `implicit TLS on ${port} (${what})`,
      run: () =>
        on(t, port, true, async (w) => {
          const greet = await w.line();
          if (!/^(220 |\* OK|\+OK)/.test(greet)) return failed(`greeting "${greet}"`);
          return tlsDetail(w.tlsInfo!, t.host, t.site, t.state);
        }),
    }));
}

export function authAfterTlsCheck(t: HostTarget): HostCheck {
  return {
    name: 'AUTH only after TLS on 587',
    run: () =>
      on(t, 587, false, async (w) => {
        const { ehlo } = await smtpHello(w);
        if (ehlo.some((k) => k.startsWith('AUTH'))) return failed('AUTH is advertised before STARTTLS: passwords could travel in clear');
        const r = await w.smtp('AUTH PLAIN AHRlc3QAdGVzdA==');
        if (r.code < 500) return failed(`AUTH before TLS answered "${r.text}"`);
        await w.smtp('STARTTLS');
        await w.startTls();
        const after = await w.smtp('EHLO verify.mailops.invalid');
        if (!after.lines.some((l) => l.toUpperCase().startsWith('AUTH'))) return failed('AUTH is not offered after STARTTLS either');
        return ok(`not offered in clear (AUTH refused: ${r.text}); offered after STARTTLS`);
      }),
  };
}

/** The envelope sender of verify's own SMTP probes on port 25 (a name that exists nowhere). */
export const PROBE_SENDER = 'verify@mailops.invalid';

export function openRelayCheck(t: HostTarget): HostCheck {
  return {
    name: 'no open relay',
    run: () =>
      on(t, 25, false, async (w) => {
        await smtpHello(w);
        const m = await w.smtp(`MAIL FROM:<${PROBE_SENDER}>`);
        if (m.code !== 250) return failed(`MAIL FROM answered "${m.text}"`);
        const r = await w.smtp('RCPT TO:<relay-test@relay-check.mailops.invalid>');
        if (r.code >= 200 && r.code < 400) return failed(`OPEN RELAY: an unauthenticated client may send to other domains ("${r.text}")`);
        return ok(`relay to another domain refused: ${r.text}`);
      }),
  };
}

export function vrfyCheck(t: HostTarget): HostCheck {
  const domain = t.site.domains[0]!.name;
  return {
    name: 'VRFY disabled',
    run: () =>
      on(t, 25, false, async (w) => {
        await smtpHello(w);
        const r = await w.smtp(`VRFY postmaster@${domain}`);
        if (r.code >= 200 && r.code < 300 && r.code !== 252) return failed(`VRFY reveals addresses: "${r.text}"`);
        return ok(r.text);
      }),
  };
}

/** IMAP on 143 and POP3 on 110 (when the playbook has them) refuse a login before STARTTLS / STLS. */
export function cleartextLoginChecks(t: HostTarget): HostCheck[] {
  const s = t.site.stack;
  const imap: HostCheck = {
    name: 'IMAP login refused before TLS (143)',
    run: () =>
      on(t, 143, false, async (w) => {
        const greet = await w.line();
        w.send('a1 LOGIN "verify@mailops.invalid" "not-a-password"');
        let l = await w.line();
        while (l.startsWith('* ')) l = await w.line();
        if (/^a1 OK/i.test(l)) return failed('plaintext LOGIN accepted before STARTTLS');
        return ok(`${/LOGINDISABLED/i.test(greet) ? 'LOGINDISABLED advertised; ' : ''}${l}`);
      }),
  };
  const pop3: HostCheck = {
    name: 'POP3 login refused before TLS (110)',
    run: () =>
      on(t, 110, false, async (w) => {
        await w.line();
        w.send('USER verify@mailops.invalid');
        const u = await w.line();
        if (u.startsWith('-ERR')) return ok(`USER refused: ${u}`);
        w.send('PASS not-a-password');
        const p = await w.line();
        if (p.startsWith('+OK')) return failed('plaintext login accepted before STLS');
        return ok(p);
      }),
  };
  return [...(s.imap ? [imap] : []), ...(s.pop3 ? [pop3] : [])];
}

export function submissionCheck(t: HostTarget): HostCheck {
  return {
    name: 'authenticated submission (587)',
    run: async () => {
      const cred = credentialFor(t.site);
      if (!cred) return skipped('no mailbox has a password mailops can read (password: { env } or { file }): nothing to log in with');
      return on(t, 587, false, async (w) => {
        await smtpHello(w);
        await w.smtp('STARTTLS');
        const trust = tlsDetail(await w.startTls(), t.host, t.site, t.state);
        if (trust.status !== 'ok') return failed(`the password was not sent: ${trust.detail}`);
        await w.smtp('EHLO verify.mailops.invalid');
        const a = await w.smtp(`AUTH PLAIN ${Buffer.from(`\0${cred.user}\0${cred.password}`).toString('base64')}`);
        if (a.code !== 235) return failed(`AUTH as ${cred.user} answered "${a.text}"`);
        const m = await w.smtp(`MAIL FROM:<${cred.user}>`);
        const r = m.code === 250 ? await w.smtp(`RCPT TO:<${cred.user}>`) : m;
        await w.smtp('RSET');
        if (r.code !== 250) return failed(`authenticated as ${cred.user}, but sending as itself was refused: "${r.text}"`);
        return ok(`${cred.user} logged in and may send as itself`);
      });
    },
  };
}
