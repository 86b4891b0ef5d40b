/** POSIX shell quoting for the scripts mailops runs on hosts. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export const shqAll = (xs: readonly string[]): string => xs.map(shq).join(' ');

/** A path for the shell with its `*` left to glob, all else quoted ("/etc/dkim keys/*.key" → '/etc/dkim keys/'*.key). */
export const shqGlob = (p: string): string =>
  p
    .split('*')
    .map((x) => (x === '' ? '' : shq(x)))
    .join('*');

/**
 * The shell test of a group guard (GroupGuard: plan reads the same from the facts' stat, groupGuardHolds):
 * every file the paths name belongs to the group; a glob that matches nothing asks for nothing, a named
 * path that is missing fails.
 */
export function groupGuardCommand(paths: readonly string[], group: string): string {
  return `for f in ${paths.map(shqGlob).join(' ')}; do [ -e "$f" ] || { case "$f" in *'*'*) continue;; esac; exit 1; }; [ "$(stat -c %G -- "$f")" = ${shq(group)} ] || exit 1; done`;
}

/**
 * The public halves of the host's DKIM keys, as the last activation read them: one file a key, named by
 * the SHA-256 of the key file, holding its SubjectPublicKeyInfo (DER, base64). A name that matches is that
 * very key; the fact script reads the file instead of running openssl for the key. Root's alone, as
 * /var/lib/mailops is, and it never leaves the host.
 */
export const DKIM_PUBLIC_CACHE = '/var/lib/mailops/dkim-public';

/** The lock every apply holds on a host (flock on this file). */
export const LOCK_FILE = '/var/lib/mailops/lock';

/** A systemd unit name with its suffix ("postfix" → "postfix.service"). */
export const unitOf = (u: string): string => (u.includes('.') ? u : `${u}.service`);

/**
 * A unit and its template instances, as words for `systemctl stop`/`is-active` ("postfix.service" →
 * postfix.service 'postfix@*.service'): Debian's postfix.service only starts postfix@-.service, which is
 * PartOf it; once the package is removed (a conflicting MTA installed) its unit files and that link are
 * gone, and the instance must be named to be reached.
 */
export function unitAndInstances(u: string): string {
  const unit = unitOf(u);
  return unit.endsWith('.service') ? `${shq(unit)} ${shq(`${unit.slice(0, -'.service'.length)}@*.service`)}` : shq(unit);
}

/**
 * Prints the SHA-256 fingerprint of a certificate file (of its first certificate, as lower-case hex),
 * nothing when it is missing or unreadable: for the activation's report and the replication trust guard
 * (the fact script prints the PEM, tlsFact hashes it). The DER is hashed as it is: `openssl x509` costs some 20 ms a call (OpenSSL 3.0).
 */
export function tlsFingerprintCommand(cert: string): string {
  return `${firstCertificate(cert)} | sed '/-----/d' | base64 -d 2>/dev/null | sha256sum | { read -r h _ && [ "$h" != ${EMPTY_SHA256} ] && echo "$h"; }`;
}

/**
 * Prints the first certificate of a PEM file (a full chain's leaf), nothing when the file is missing: the
 * lines from the first that holds BEGIN CERTIFICATE to the next that holds END CERTIFICATE, as
 * `sed -n '/BEGIN/,/END/{p;/END/q}'` prints them, read by the shell itself.
 */
export function firstCertificate(cert: string): string {
  const begin = `*'-----BEGIN CERTIFICATE-----'*`;
  const end = `*'-----END CERTIFICATE-----'*`;
  return `[ -f ${shq(cert)} ] && { c=; while IFS= read -r l || [ -n "$l" ]; do case "$l" in ${begin}) c=1;; esac; if [ -n "$c" ]; then printf '%s\\n' "$l"; case "$l" in ${end}) break;; esac; fi; done < ${shq(cert)}; }`;
}

/** SHA-256 of no bytes: what the fingerprint command hashes when the file holds no certificate. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
