/** Dovecot-compatible password hashes ({SHA512-CRYPT}, glibc crypt(3) $6$, 5000 rounds: verifiable by doveadm and openssl). */
import { createHmac, randomBytes } from 'node:crypto';
import { encrypt, verify } from 'unixcrypt';

const SALT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function saltFrom(bytes: Buffer): string {
  let s = '';
  for (let i = 0; i < 16; i++) s += SALT_ALPHABET[bytes[i]! % 64];
  return s;
}

/** A new hash with a random salt. */
export function hashPassword(plain: string): string {
  return `{SHA512-CRYPT}${encrypt(plain, `$6$${saltFrom(randomBytes(16))}`)}`;
}

/**
 * A hash whose salt is derived from the password and the address it belongs to, so rendering the same
 * secret twice yields the same file (no spurious diff, reload or restart), while two mailboxes with the
 * same password still get different salts.
 */
export function stableHash(plain: string, address: string): string {
  const salt = saltFrom(createHmac('sha256', plain).update(`mailops-salt:${address}`).digest());
  return `{SHA512-CRYPT}${encrypt(plain, `$6$${salt}`)}`;
}

export function verifyPassword(plain: string, hash: string): boolean {
  const m = /^\{(SHA512-CRYPT|SHA256-CRYPT)\}(.*)$/s.exec(hash);
  return m ? verify(plain, m[2]!) : false;
}
