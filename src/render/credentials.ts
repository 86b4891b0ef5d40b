/** Resolve every mailbox's password hash: the playbook's hash, or a stable hash of its secret. */
import { stableHash } from '../crypto/password.js';
import type { Site } from '../model/site.js';
import { readSecret } from '../site/secrets.js';
import type { Credentials } from './context.js';

export function resolveCredentials(site: Site): Credentials {
  const out = new Map<string, string>();
  for (const d of site.domains) {
    for (const m of d.mailboxes) {
      if (m.passwordHash !== undefined) out.set(m.address, m.passwordHash);
      else if (m.passwordSecret) out.set(m.address, stableHash(readSecret(m.passwordSecret, `mailbox ${m.address}`), m.address));
    }
  }
  return out;
}
