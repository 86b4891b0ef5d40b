/**
 * Zone serials that need no state of their own. Pure.
 *
 * A serial must grow whenever the content of a zone changes (secondaries transfer only a higher serial)
 * and should stay put while it does not (a re-render is not a change). chooseSerial() takes whatever is
 * known: the serial recorded with the digest of the content it was given for (the state file), the
 * serial the server has now, and the clock.
 *
 * The limit that remains: with neither a recorded serial nor a live one (fresh clones, no server known),
 * the serial is dateSerial(now) alone, so two *different* renders within the same 15-minute slot get the
 * same serial. Anything that knows one of the two (the state file is committed beside the playbook;
 * `dns.update` reads the live SOA) never repeats a serial for different content and never goes back.
 * Serials are compared as plain numbers, not RFC 1982 sequence space: a serial near 2^32 (never produced
 * here before the year 4294) would need a manual wrap.
 */

export interface RecordedSerial {
  serial: number;
  digest: string;
}

export interface SerialInput {
  /** Digest of the zone content without its serial. */
  digest: string;
  /** The serial recorded for an earlier content, and that content's digest. */
  recorded?: RecordedSerial;
  /** The serial the primary server has now. */
  live?: number;
  now: Date;
}

export const MAX_SERIAL = 0xffffffff;

/** YYYYMMDDnn, nn being the 15-minute slot of the UTC day (00..95). */
export function dateSerial(now: Date): number {
  const slot = Math.floor((now.getUTCHours() * 60 + now.getUTCMinutes()) / 15);
  return ((now.getUTCFullYear() * 100 + now.getUTCMonth() + 1) * 100 + now.getUTCDate()) * 100 + slot;
}

/**
 * The recorded serial while the content is unchanged and the server is not ahead of it; otherwise the
 * first serial above everything known: max(recorded + 1, live + 1, dateSerial(now)).
 */
export function chooseSerial(input: SerialInput): number {
  const { digest, recorded, live, now } = input;
  if (recorded && recorded.digest === digest && (live === undefined || live <= recorded.serial)) return recorded.serial;
  const next = Math.max(recorded ? recorded.serial + 1 : 0, live === undefined ? 0 : live + 1, dateSerial(now));
  if (next > MAX_SERIAL) throw new RangeError(`zone serial ${next} is above 2^32-1: the serial needs a manual RFC 1982 wrap`);
  return next;
}
