/** Pure syntax predicates for names, addresses and units used across the playbook. */
import { isIPv4, isIPv6 } from 'node:net';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A fully qualified domain or host name: at least two labels, letters/digits/hyphens, not all-numeric TLD. */
export function isFqdn(name: string): boolean {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n.length === 0 || n.length > 253 || n !== n.toLowerCase()) return false;
  const labels = n.split('.');
  if (labels.length < 2) return false;
  if (!labels.every((l) => LABEL.test(l))) return false;
  return !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

/** A DNS owner name that may hold service labels such as _spf or _domainkey (not a host name). */
export function isDnsName(name: string): boolean {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n.length === 0 || n.length > 253 || n !== n.toLowerCase()) return false;
  const labels = n.split('.');
  return labels.length >= 2 && labels.every((l) => /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/.test(l)) && !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

export function fqdnProblem(name: string): string {
  if (name !== name.toLowerCase()) return `"${name}" must be written in lowercase`;
  if (!name.includes('.')) return `"${name}" is not a fully qualified name (e.g. mail.example.com)`;
  return `"${name}" is not a valid domain name (labels of 1-63 letters, digits and inner hyphens, separated by dots)`;
}

export { isIPv4, isIPv6 };

/** Control characters: C0 (line break, CR, NUL, tab...), DEL, C1, and the Unicode line and paragraph separators. */
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export const CONTROL_NAMES: Record<string, string> = {
  '\0': 'a NUL byte',
  '\t': 'a tab',
  '\n': 'a line break',
  '\r': 'a carriage return',
  '\u000b': 'a vertical tab',
  '\u000c': 'a form feed',
  '\u001b': 'an escape character',
  '\u007f': 'a DEL character',
  '\u0085': 'a next-line character',
  '\u2028': 'a line separator',
  '\u2029': 'a paragraph separator',
};

/** `U+000A`. */
export const codePoint = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** The string as it can be quoted in a one-line message: every control character escaped, long ones cut. */
export function escapeControls(s: string, max = 60): string {
  const cut = s.length > max ? `${s.slice(0, max)}...` : s;
  const esc: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\0': '\\0', '"': '\\"', '\\': '\\\\' };
  return `"${cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029"\\]/g, (c) => esc[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/** Why a playbook string may not be used (it holds a control character), or null. */
export function controlProblem(s: string): string | null {
  const m = CONTROL_CHARACTER.exec(s);
  if (!m) return null;
  const c = m[0];
  const what = `${CONTROL_NAMES[c] ?? 'a control character'} (${codePoint(c)})`;
  const last = m.index === s.length - 1;
  const where = !last ? `at character ${m.index + 1}` : c === '\n' ? 'at its end (a YAML block scalar "|" keeps the final line break: use "|-" or a plain value)' : 'at its end';
  return `${escapeControls(s)} holds ${what} ${where}: playbook values are copied into configuration files, zones and commands, where a control character could start a setting of its own; remove it`;
}

/** A local part we accept for mailboxes and aliases: lowercase, no "+" (the recipient delimiter). */
export const LOCAL_PART = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;

export function localPartProblem(local: string): string | null {
  if (LOCAL_PART.test(local) && !local.includes('..')) return null;
  if (local !== local.toLowerCase()) return `"${local}" must be written in lowercase`;
  if (local.includes('+')) return `"${local}" may not contain "+": it separates address extensions (alice+tag@...)`;
  if (local.includes('@')) return `"${local}" must be a local part only (the domain is added)`;
  return `"${local}" is not a valid local part (letters, digits, ".", "_", "-"; not starting or ending with a dot or hyphen)`;
}

/** A plain email address (local@domain) of any domain, as used for external targets and reports. */
export function isEmail(addr: string): boolean {
  const at = addr.lastIndexOf('@');
  if (at <= 0) return false;
  const local = addr.slice(0, at);
  const domain = addr.slice(at + 1);
  return /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/.test(local) && !local.startsWith('.') && !local.endsWith('.') && !local.includes('..') && isFqdn(domain.toLowerCase());
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "50M" → 52428800; a bare number is bytes. Null when malformed. */
export function parseSize(v: unknown): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^([0-9]+)([KMGT]?)$/.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]) * UNITS[m[2]!]!;
  return Number.isSafeInteger(n) ? n : null;
}

const SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** "10m" → 600; a bare number is seconds. Null when malformed. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^([0-9]+)([smhdw]?)$/.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]) * SECONDS[m[2]!]!;
  return Number.isSafeInteger(n) ? n : null;
}

/** The password hash schemes Dovecot verifies that we accept, with the shape of their bodies. */
const HASH_SCHEMES: Record<string, RegExp> = {
  'SHA512-CRYPT': /^\$6\$(rounds=[0-9]{4,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/,
  'SHA256-CRYPT': /^\$5\$(rounds=[0-9]{4,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43}$/,
  'BLF-CRYPT': /^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$/,
  ARGON2I: /^\$argon2i\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/,
  ARGON2ID: /^\$argon2id\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/,
};

export function passwordHashProblem(hash: string): string | null {
  const m = /^\{([A-Z0-9-]+)\}(.*)$/s.exec(hash);
  if (!m) return 'must start with its scheme, e.g. {SHA512-CRYPT}$6$... (make one with `mailops hash-password`)';
  const scheme = m[1]!;
  const shape = HASH_SCHEMES[scheme];
  if (!shape) {
    return `uses the scheme {${scheme}}, which is not accepted: use {SHA512-CRYPT}, {BLF-CRYPT} or {ARGON2ID} (\`mailops hash-password\`)`;
  }
  if (!shape.test(m[2]!)) return `is not a well-formed {${scheme}} hash (truncated or mangled?)`;
  return null;
}
