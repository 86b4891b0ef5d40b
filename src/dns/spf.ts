/**
 * SPF records (RFC 7208): a parser, and the count of DNS-querying terms a receiver evaluates, which must
 * stay at or below 10 (§4.6.4) or the check ends in permerror. parseSpf() is pure; countSpfLookups()
 * takes the TXT resolver as an argument (node:dns/promises resolveTxt, or a fake in tests).
 */

export type SpfQualifier = '+' | '-' | '~' | '?';

export interface SpfMechanism {
  qualifier: SpfQualifier;
  /** all, include, a, mx, ptr, ip4, ip6, exists (lower case). */
  name: string;
  /** What follows ':' (or '/' for a bare a/mx with a prefix length), if anything. */
  value?: string;
}

export interface SpfRecord {
  mechanisms: SpfMechanism[];
  /** name=value terms (redirect, exp, unknown ones), names in lower case. */
  modifiers: Record<string, string>;
  /** Terms that are neither (a syntax error for receivers). */
  invalid: string[];
}

const MECHANISMS = new Set(['all', 'include', 'a', 'mx', 'ptr', 'ip4', 'ip6', 'exists']);
/** The terms that cost a DNS lookup (§4.6.4); redirect is a modifier and counts too. */
const LOOKUP_TERMS = new Set(['include', 'a', 'mx', 'ptr', 'exists']);
export const SPF_LOOKUP_LIMIT = 10;
/** Stop following includes past this many lookups or this depth: the count is already over the limit. */
const CAP = 50;
const MAX_DEPTH = 10;

/** Whether a TXT value is an SPF record ("v=spf1" followed by a space or nothing). */
export function isSpf(txt: string): boolean {
  return /^v=spf1(\s|$)/i.test(txt.trim());
}

/** The terms of an SPF record, or null when `txt` is not one. */
export function parseSpf(txt: string): SpfRecord | null {
  if (!isSpf(txt)) return null;
  const rec: SpfRecord = { mechanisms: [], modifiers: {}, invalid: [] };
  for (const term of txt.trim().split(/\s+/).slice(1)) {
    const mod = /^([a-z][a-z0-9_.-]*)=(.*)$/i.exec(term);
    if (mod) {
      rec.modifiers[mod[1]!.toLowerCase()] = mod[2]!;
      continue;
    }
    const m = /^([+\-~?]?)([a-z0-9]+)([:/].*)?$/i.exec(term);
    const name = m?.[2]?.toLowerCase();
    if (!m || !name || !MECHANISMS.has(name)) {
      rec.invalid.push(term);
      continue;
    }
    const rest = m[3];
    rec.mechanisms.push({
      qualifier: (m[1] || '+') as SpfQualifier,
      name,
      ...(rest === undefined ? {} : { value: rest.startsWith(':') ? rest.slice(1) : rest }),
    });
  }
  return rec;
}

export type ResolveTxt = (name: string) => Promise<string[][]>;

export interface SpfLookupCount {
  /** DNS-querying terms evaluated in total (include, a, mx, ptr, exists, redirect), through includes. */
  lookups: number;
  /** One line per counted term: "example.com: include:_spf.crm-provider.example (2)". */
  detail: string[];
  /** What a receiver would call an error: no or several SPF records, loops, over the limit... */
  problems: string[];
}

/**
 * Counts the lookups of the SPF record of `domain` per RFC 7208 §4.6.4, following include and redirect
 * recursively. A domain that appears again inside its own chain is a loop (reported, not followed);
 * counting stops following terms after 50 lookups or 10 levels.
 */
export async function countSpfLookups(domain: string, resolveTxt: ResolveTxt): Promise<SpfLookupCount> {
  const result: SpfLookupCount = { lookups: 0, detail: [], problems: [] };
  await walk(domain.replace(/\.$/, '').toLowerCase(), [], resolveTxt, result);
  if (result.lookups > SPF_LOOKUP_LIMIT) {
    result.problems.push(`${result.lookups} DNS lookups: more than the ${SPF_LOOKUP_LIMIT} RFC 7208 allows (receivers return permerror)`);
  }
  return result;
}

async function spfOf(domain: string, resolveTxt: ResolveTxt, result: SpfLookupCount): Promise<SpfRecord | null> {
  let txts: string[][];
  try {
    txts = await resolveTxt(domain);
  } catch (e) {
    const code = (e as { code?: string }).code;
    result.problems.push(`${domain}: no TXT records (${code ?? (e as Error).message})`);
    return null;
  }
  const spf = txts.map((parts) => parts.join('')).filter(isSpf);
  if (spf.length === 0) {
    result.problems.push(`${domain}: no SPF record`);
    return null;
  }
  if (spf.length > 1) result.problems.push(`${domain}: ${spf.length} SPF records (receivers return permerror)`);
  const rec = parseSpf(spf[0]!)!;
  for (const t of rec.invalid) result.problems.push(`${domain}: unknown term "${t}"`);
  return rec;
}

function capped(result: SpfLookupCount): boolean {
  if (result.lookups < CAP) return false;
  const note = `stopped counting at ${CAP} lookups`;
  if (!result.problems.includes(note)) result.problems.push(note);
  return true;
}

async function walk(domain: string, chain: string[], resolveTxt: ResolveTxt, result: SpfLookupCount): Promise<void> {
  if (chain.length >= MAX_DEPTH) {
    result.problems.push(`${[...chain, domain].join(' → ')}: nested deeper than ${MAX_DEPTH}, not followed`);
    return;
  }
  const rec = await spfOf(domain, resolveTxt, result);
  if (!rec) return;
  const follow = async (target: string) => {
    const t = target.replace(/\.$/, '').toLowerCase();
    if (t.includes('%')) {
      result.problems.push(`${domain}: ${target} holds a macro, not followed`);
      return;
    }
    if (t === domain || chain.includes(t)) {
      result.problems.push(`${[...chain, domain, t].join(' → ')}: loop, not followed`);
      return;
    }
    await walk(t, [...chain, domain], resolveTxt, result);
  };
  for (const m of rec.mechanisms) {
    if (!LOOKUP_TERMS.has(m.name)) continue;
    if (capped(result)) return;
    result.lookups++;
    result.detail.push(`${domain}: ${m.name}${m.value === undefined ? '' : m.value.startsWith('/') ? m.value : `:${m.value}`} (${result.lookups})`);
    if (m.name === 'include') {
      if (m.value) await follow(m.value);
      else result.problems.push(`${domain}: include without a domain`);
    }
  }
  // redirect is used only when the record has no "all" (§6.1).
  const redirect = rec.modifiers['redirect'];
  if (redirect !== undefined && !rec.mechanisms.some((m) => m.name === 'all')) {
    if (capped(result)) return;
    result.lookups++;
    result.detail.push(`${domain}: redirect=${redirect} (${result.lookups})`);
    await follow(redirect);
  }
}
