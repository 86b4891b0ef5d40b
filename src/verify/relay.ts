/**
 * The smarthost check of `mailops verify`: the relay of stack.relay accepts our login. It runs from where
 * verify runs, as every other check (verify holds no SSH session): connect to the relay's host and port
 * (with --resolver, its address as that server answers), TLS as the MTAs use it (STARTTLS on 587, 2525 and
 * 25, implicit on 465), EHLO, AUTH PLAIN, QUIT. The password is sent only inside TLS and never shown.
 */
import { isIP } from 'node:net';
import type { Site } from '../model/site.js';
import { readSecret } from '../site/secrets.js';
import type { CheckResult, VerifyOptions } from './checks.js';
import { Wire } from './wire.js';

export const RELAY_CHECK = 'relay accepts our login';

type Outcome = Pick<CheckResult, 'status' | 'detail'>;

export async function relayCheck(site: Site, opts: VerifyOptions = {}): Promise<CheckResult[]> {
  const relay = site.stack.relay;
  if (!relay) return [];
  let o: Outcome;
  try {
    o = await relayLogin(relay.host, relay.port, relay.username, readSecret(relay.password, 'stack.relay.password'), opts);
  } catch (e) {
    o = { status: 'failed', detail: (e as Error).message };
  }
  return [{ host: `relay ${relay.host}:${relay.port}`, name: RELAY_CHECK, ...o }];
}

export async function relayLogin(host: string, port: number, username: string, password: string, opts: VerifyOptions = {}): Promise<Outcome> {
  let address = host;
  if (opts.resolver && !isIP(host)) {
    const a = await opts.resolver.resolve4(host).catch(() => [] as string[]);
    if (!a[0]) return { status: 'failed', detail: `${host} has no A record${opts.resolverName ? ` (resolver ${opts.resolverName})` : ''}` };
    address = a[0];
  }
  const implicit = port === 465;
  const w = await Wire.open({ host: address, port, tls: implicit, servername: host, timeoutMs: opts.timeoutMs ?? 10000 });
  try {
    const banner = await w.smtpReply();
    if (banner.code !== 220) return { status: 'failed', detail: `greeting was "${banner.text}"` };
    let e = await w.smtp('EHLO verify.mailops.invalid');
    if (e.code !== 250) return { status: 'failed', detail: `EHLO answered "${e.text}"` };
    if (!implicit) {
      if (!e.lines.some((l) => /^STARTTLS\b/i.test(l))) return { status: 'failed', detail: `${host}:${port} offers no STARTTLS: mailops sends the password only over TLS` };
      const s = await w.smtp('STARTTLS');
      if (s.code !== 220) return { status: 'failed', detail: `STARTTLS answered "${s.text}"` };
      await w.startTls();
      e = await w.smtp('EHLO verify.mailops.invalid');
      if (e.code !== 250) return { status: 'failed', detail: `EHLO after STARTTLS answered "${e.text}"` };
    }
    const tls = w.tlsInfo!;
    const auth = e.lines.find((l) => /^AUTH[ =]/i.test(l));
    if (!auth || !/\bPLAIN\b/i.test(auth)) return { status: 'failed', detail: `${host}:${port} does not offer AUTH PLAIN over ${tls.protocol} (EHLO: ${auth ?? 'no AUTH'})` };
    const r = await w.smtp(`AUTH PLAIN ${Buffer.from(`\0${username}\0${password}`, 'utf8').toString('base64')}`);
    await w.smtp('QUIT').catch(() => undefined);
    if (r.code !== 235) return { status: 'failed', detail: `login as ${username} refused over ${tls.protocol}: "${r.text}"` };
    return { status: 'ok', detail: `${tls.protocol}, login as ${username}: "${r.text}"` };
  } finally {
    w.close();
  }
}
