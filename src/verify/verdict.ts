/**
 * Reading a receiver's verdict on a delivered message: its Authentication-Results (RFC 8601) and the
 * Received line it added (HELO name, verified client name, TLS). Pure.
 */

export interface AuthResult {
  method: string;
  result: string;
  /** Properties such as header.d, header.a, smtp.mailfrom, header.from. */
  props: Record<string, string>;
}

export interface Verdict {
  results: AuthResult[];
  /** The receiver's own Received line about the client: HELO, verified name, address, TLS. */
  received?: { helo: string; verifiedName?: string; ip?: string; tls?: string };
}

/** The header fields of a raw message, unfolded, in order. */
export function headerFields(raw: string): Array<{ name: string; value: string }> {
  return fieldsOf(raw.split(/\r?\n\r?\n/, 1)[0] ?? '');
}

/** The fields of one block of "Name: value" lines (a header, a group of a delivery report), unfolded. */
function fieldsOf(head: string): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1]!.value += ` ${line.trim()}`;
    else {
      const i = line.indexOf(':');
      if (i > 0) out.push({ name: line.slice(0, i).trim(), value: line.slice(i + 1).trim() });
    }
  }
  return out;
}

/** Results of the Authentication-Results fields that `authservId` added (comments removed). */
export function authResults(raw: string, authservId: string): AuthResult[] {
  const out: AuthResult[] = [];
  for (const f of headerFields(raw)) {
    if (f.name.toLowerCase() !== 'authentication-results') continue;
    const value = f.value.replace(/\([^()]*\)/g, ' ');
    const [id, ...parts] = value.split(';');
    if ((id ?? '').trim().split(/\s+/)[0]?.toLowerCase() !== authservId.toLowerCase()) continue;
    for (const part of parts) {
      const m = /^\s*([a-z0-9-]+)\s*=\s*([a-z]+)\s*(.*)$/i.exec(part);
      if (!m || m[1]!.toLowerCase() === 'none') continue;
      const props: Record<string, string> = {};
      for (const p of m[3]!.matchAll(/([a-z]+\.[a-z0-9_.-]+)\s*=\s*("[^"]*"|[^\s;]+)/gi)) props[p[1]!.toLowerCase()] = p[2]!.replace(/^"|"$/g, '');
      out.push({ method: m[1]!.toLowerCase(), result: m[2]!.toLowerCase(), props });
    }
  }
  return out;
}

/** The Received field that `receiver` (its host name) added: "from HELO (NAME [IP]) by receiver ... (using TLS...)". */
export function receivedBy(raw: string, receiver: string): Verdict['received'] {
  for (const f of headerFields(raw)) {
    if (f.name.toLowerCase() !== 'received' || !new RegExp(`\\bby ${receiver.replace(/\./g, '\\.')}\\b`, 'i').test(f.value)) continue;
    const m = /^from\s+(\S+)\s+\((?:(\S+)\s+)?\[([0-9a-f.:]+)\]\)/i.exec(f.value);
    if (!m) continue;
    const tls = /\(using (TLSv[0-9.]+)[^)]*\)/i.exec(f.value)?.[1];
    return { helo: m[1]!, ...(m[2] && m[2] !== 'unknown' ? { verifiedName: m[2] } : {}), ip: m[3]!, ...(tls ? { tls } : {}) };
  }
  return undefined;
}

export function verdictOf(raw: string, receiver: string): Verdict {
  const received = receivedBy(raw, receiver);
  return { results: authResults(raw, receiver), ...(received ? { received } : {}) };
}

/**
 * What a strict receiver must have seen for mail of `domain` from `hostname`: dkim=pass for every
 * signature of the domain (at least one), spf=pass, dmarc=pass, HELO = verified PTR name = host name,
 * and TLS. Returns the problems (none: it passed) and a one-line summary.
 */
export function judge(v: Verdict, domain: string, hostname: string, o: { signs?: boolean; relayed?: boolean } = {}): { problems: string[]; summary: string } {
  const problems: string[] = [];
  const dkim = v.results.filter((r) => r.method === 'dkim' && (r.props['header.d'] ?? '').toLowerCase() === domain.toLowerCase());
  // A domain the playbook gives no DKIM key is not signed: SPF alone aligns for DMARC.
  const signs = o.signs ?? true;
  if (dkim.length === 0 && signs) problems.push(`no DKIM result for d=${domain}`);
  for (const r of dkim) if (r.result !== 'pass') problems.push(`dkim=${r.result} (${r.props['header.a'] ?? '?'}, s=${r.props['header.s'] ?? '?'})`);
  for (const method of ['spf', 'dmarc']) {
    const r = v.results.find((x) => x.method === method);
    if (!r) problems.push(`no ${method.toUpperCase()} result`);
    else if (r.result !== 'pass') problems.push(`${method}=${r.result}`);
  }
  const rc = v.received;
  if (!rc) problems.push('no Received line of the receiver about our host');
  else {
    // Through a smarthost (stack.relay), the receiver talks to it: its HELO and PTR are the smarthost's.
    if (!o.relayed && rc.helo.toLowerCase() !== hostname.toLowerCase()) problems.push(`HELO ${rc.helo}, not ${hostname}`);
    if (!o.relayed && (rc.verifiedName ?? '').toLowerCase() !== hostname.toLowerCase()) problems.push(`the receiver verified the client as ${rc.verifiedName ?? 'unknown'} (PTR), not ${hostname}`);
    if (!rc.tls) problems.push('delivered without TLS');
  }
  const parts = [
    ...(dkim.length || signs ? dkim.map((r) => `dkim=${r.result} (${r.props['header.a'] ?? '?'}, s=${r.props['header.s'] ?? '?'})`) : [`no DKIM (${domain} has no key in the playbook)`]),
    ...['spf', 'dmarc'].map((m) => `${m}=${v.results.find((x) => x.method === m)?.result ?? 'none'}`),
    ...(rc ? [`HELO ${rc.helo}, PTR ${rc.verifiedName ?? 'unknown'} [${rc.ip}]${o.relayed ? ' (the smarthost)' : ''}`, rc.tls ? `over ${rc.tls}` : 'no TLS'] : []),
  ];
  return { problems, summary: parts.join(', ') };
}

/**
 * When `raw` is a delivery status notification (RFC 3464: multipart/report; report-type=delivery-status)
 * saying that delivery to `recipient` failed, what the failing server said: its Diagnostic-Code without
 * the type ("smtp; ", "lmtp; "), else the Status. Undefined for any other message. Postfix and Exim both
 * write one group of fields per recipient (Final-Recipient, Action, Status, Diagnostic-Code).
 */
export function bounceFor(raw: string, recipient: string): string | undefined {
  const type = headerFields(raw).find((f) => f.name.toLowerCase() === 'content-type')?.value ?? '';
  if (!/^multipart\/report\b/i.test(type) || !/report-type\s*=\s*"?delivery-status/i.test(type)) return undefined;
  const want = recipient.toLowerCase();
  for (const block of raw.split(/\r?\n[ \t]*\r?\n/)) {
    const f = new Map(fieldsOf(block).map((x) => [x.name.toLowerCase(), x.value] as const));
    const final = /^rfc822\s*;\s*<?([^\s>]+)>?/i.exec(f.get('final-recipient') ?? '')?.[1]?.toLowerCase();
    if (final !== want || (f.get('action') ?? '').toLowerCase() !== 'failed') continue;
    const diagnostic = f.get('diagnostic-code')?.replace(/^[a-z0-9-]+\s*;\s*/i, '');
    return diagnostic || `status ${f.get('status') ?? 'unknown'}`;
  }
  return undefined;
}
