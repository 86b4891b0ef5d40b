/**
 * Resolve every mailbox's password hash (the playbook's hash, or a stable hash of its secret), and the
 * smarthost's password (plaintext: it is sent to the relay; it is only ever written to secret files).
 */
import { stableHash } from '../crypto/password.js';
import type { Site } from '../model/site.js';
import { readSecret } from '../site/secrets.js';
import type { Credentials } from './context.js';

/** The key of the smarthost's password in Credentials (no mailbox address has this form: it has no @). */
export const RELAY_PASSWORD = 'relay:password';

/** A hash no password matches: what `render` writes for a mailbox whose secret it cannot read. */
export const LOCKED_HASH = '{CRYPT}!';

/**
 * Every mailbox's hash. A secret that cannot be read is an error, unless `missing` collects it: then
 * the mailbox gets LOCKED_HASH (render and dns need no passwords; plan and apply do).
 */
export function resolveCredentials(site: Site, missing?: string[]): Credentials {
  const out = new Map<string, string>();
  for (const d of site.domains) {
    for (const m of d.mailboxes) {
      if (m.passwordHash !== undefined) out.set(m.address, m.passwordHash);
      else if (m.passwordSecret) {
        try {
          out.set(m.address, stableHash(readSecret(m.passwordSecret, `mailbox ${m.address}`), m.address));
        } catch (e) {
          if (!missing) throw e;
          missing.push((e as Error).message);
          out.set(m.address, LOCKED_HASH);
        }
      }
    }
  }
  const relay = site.stack.relay;
  if (relay) {
    try {
      out.set(RELAY_PASSWORD, readSecret(relay.password, 'stack.relay.password'));
    } catch (e) {
      if (!missing) throw e;
      missing.push((e as Error).message);
      // render writes no password it could not read: an empty one, which the relay refuses.
      out.set(RELAY_PASSWORD, '');
    }
  }
  return out;
}
