/**
 * Protocol-level checks of one mail host, shared by `mailops verify` and the test suite. Every check has a
 * name, a status (ok / failed / skipped) and a detail a person can act on.
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

type Outcome = { status: Status; detail: string };
const ok = (detail: string): Outcome => ({ status: 'ok', detail });
const failed = (detail: string): Outcome => ({ status: 'failed', detail });
const skipped = (detail: string): Outcome => ({ status: 'skipped', detail });

/**
 * Whether a TLS session may be trusted: a certificate for the host name, TLS 1.2 or newer, and a chain
 * the system trusts — or, only with tls.mode self-signed, exactly the host's own certificate (the
 * fingerprint `apply` recorded). The authenticated checks send a password only when this is ok.
 */
export function tlsDetail(t: TlsInfo, host: Host, site: Site, state: SiteState): Outcome {
  if (!certCovers(t.subjectNames, host.hostname)) return failed(`certificate is for ${t.subjectNames.join(', ') || '(no name)'}, not ${host.hostname}`);
  if (t.protocol !== 'TLSv1.2' && t.protocol !== 'TLSv1.3') return failed(`negotiated ${t.protocol}; TLS 1.2 or newer is required`);
  if (!t.trusted) {
    if (site.stack.tls.mode !== 'self-signed') return failed(`${t.protocol}, certificate for ${host.hostname} is not trusted (${t.trustError ?? 'unknown issuer'})`);
    const own = state.tls[host.hostname];
    if (!own) return failed(`${t.protocol}, self-signed certificate, but no certificate of ${host.hostname} is recorded to compare it with: run mailops apply (it records the host's certificate)`);
    if (own !== t.fingerprint) return failed(`${t.protocol}, self-signed certificate that is NOT the host's own (SHA-256 ${t.fingerprint.slice(0, 16)}…, recorded ${own.slice(0, 16)}…): someone may be in the middle`);
    return ok(`${t.protocol}, the host's own self-signed certificate for ${host.hostname} (SHA-256 ${own.slice(0, 16)}…, tls.mode is self-signed)`);
  }
  return ok(`${t.protocol}, trusted certificate for ${host.hostname}, valid to ${t.validTo}`);
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
 * A mailbox whose password mailops can read, for the authenticated checks: one that may log in and send
 * (never a disabled one or one with send: false), preferably one without a send_limit (whose count the
 * check would use up).
 */
export function credentialFor(site: Site, domain?: string): { user: string; password: string } | undefined {
  const candidates = site.domains
    .filter((d) => domain === undefined || d.name === domain)
    .flatMap((d) => d.mailboxes)
    .filter((m) => m.passwordSecret && m.enabled && m.send);
  for (const m of [...candidates.filter((c) => !c.sendLimit), ...candidates.filter((c) => c.sendLimit)]) {
    try {
      return { user: m.address, password: readSecret(m.passwordSecret!, m.address) };
    } catch {
      /* unreadable: try the next one */
    }
  }
  return undefined;
}

export async function verifyHost(site: Site, state: SiteState, host: Host, ep: Endpoint, opts: VerifyOptions = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const run = async (name: string, f: () => Promise<Outcome>) => {
    let o: Outcome;
    try {
      o = await f();
    } catch (e) {
      o = failed((e as Error).message);
    }
    results.push({ host: host.name, name, ...o });
  };
  const domain = site.domains[0]!.name;
  const s = site.stack;

  await run('smtp banner and EHLO name', () =>
    session(ep, 25, host, opts, false, async (w) => {
      const { banner } = await smtpHello(w, host.hostname);
      if (!banner.startsWith(host.hostname)) return failed(`banner "${banner}" does not start with ${host.hostname}`);
      return ok(`220 ${banner}`);
    }),
  );
  for (const port of [25, 587]) {
    await run(`STARTTLS on ${port}`, () =>
      session(ep, port, host, opts, false, async (w) => {
        const { ehlo } = await smtpHello(w);
        if (!ehlo.includes('STARTTLS')) return failed(`port ${port} does not offer STARTTLS`);
        const r = await w.smtp('STARTTLS');
        if (r.code !== 220) return failed(`STARTTLS answered "${r.text}"`);
        return tlsDetail(await w.startTls(), host, site, state);
      }),
    );
  }
  const implicit: Array<[number, string, boolean]> = [
    [465, 'SMTP submission', true],
    [993, 'IMAP', s.imap],
    [995, 'POP3', s.pop3],
  ];
  for (const [port, what, on] of implicit) {
    if (!on) continue;
    await run(`implicit TLS on ${port} (${what})`, () =>
      session(ep, port, host, opts, true, async (w) => {
        const greet = await w.line();
        if (!/^(220 |\* OK|\+OK)/.test(greet)) return failed(`greeting "${greet}"`);
        return tlsDetail(w.tlsInfo!, host, site, state);
      }),
    );
  }
  await run('AUTH only after TLS on 587', () =>
    session(ep, 587, host, opts, false, async (w) => {
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
  );
  await run('no open relay', () =>
    session(ep, 25, host, opts, false, async (w) => {
      await smtpHello(w);
      const m = await w.smtp('MAIL FROM:<verify@mailops.invalid>');
      if (m.code !== 250) return failed(`MAIL FROM answered "${m.text}"`);
      const r = await w.smtp('RCPT TO:<relay-test@relay-check.mailops.invalid>');
      if (r.code >= 200 && r.code < 400) return failed(`OPEN RELAY: an unauthenticated client may send to other domains ("${r.text}")`);
      return ok(`relay to another domain refused: ${r.text}`);
    }),
  );
  await run('VRFY disabled', () =>
    session(ep, 25, host, opts, false, async (w) => {
      await smtpHello(w);
      const r = await w.smtp(`VRFY postmaster@${domain}`);
      if (r.code >= 200 && r.code < 300 && r.code !== 252) return failed(`VRFY reveals addresses: "${r.text}"`);
      return ok(r.text);
    }),
  );
  if (s.imap) {
    await run('IMAP login refused before TLS (143)', () =>
      session(ep, 143, host, opts, false, async (w) => {
        const greet = await w.line();
        w.send('a1 LOGIN "verify@mailops.invalid" "not-a-password"');
        let l = await w.line();
        while (l.startsWith('* ')) l = await w.line();
        if (/^a1 OK/i.test(l)) return failed('plaintext LOGIN accepted before STARTTLS');
        return ok(`${/LOGINDISABLED/i.test(greet) ? 'LOGINDISABLED advertised; ' : ''}${l}`);
      }),
    );
  }
  if (s.pop3) {
    await run('POP3 login refused before TLS (110)', () =>
      session(ep, 110, host, opts, false, async (w) => {
        await w.line();
        w.send('USER verify@mailops.invalid');
        const u = await w.line();
        if (u.startsWith('-ERR')) return ok(`USER refused: ${u}`);
        w.send('PASS not-a-password');
        const p = await w.line();
        if (p.startsWith('+OK')) return failed('plaintext login accepted before STLS');
        return ok(p);
      }),
    );
  }
  const cred = credentialFor(site);
  await run('authenticated submission (587)', async () => {
    if (!cred) return skipped('no mailbox has a password mailops can read (password: { env } or { file }): nothing to log in with');
    return session(ep, 587, host, opts, false, async (w) => {
      await smtpHello(w);
      await w.smtp('STARTTLS');
      const trust = tlsDetail(await w.startTls(), host, site, state);
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
  });
  return results;
}
