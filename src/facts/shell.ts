/** POSIX shell quoting for the scripts mailops runs on hosts. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export const shqAll = (xs: readonly string[]): string => xs.map(shq).join(' ');

/** The lock every apply holds on a host (flock on this file). */
export const LOCK_FILE = '/var/lib/mailops/lock';

/** A systemd unit name with its suffix ("postfix" → "postfix.service"). */
export const unitOf = (u: string): string => (u.includes('.') ? u : `${u}.service`);
