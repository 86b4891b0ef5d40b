/** POSIX shell quoting for the scripts mailops runs on hosts. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export const shqAll = (xs: readonly string[]): string => xs.map(shq).join(' ');

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
