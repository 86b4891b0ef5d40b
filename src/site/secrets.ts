/** Secret references ({ env: NAME } / { file: PATH }): checked for presence, read only where needed. */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { SecretRef } from '../model/site.js';
import { UserError } from '../errors.js';

export function expandPath(p: string, baseDir: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

export function toSecretRef(raw: Record<string, unknown>, baseDir: string): SecretRef | undefined {
  if (typeof raw['env'] === 'string') return { kind: 'env', name: raw['env'] };
  if (typeof raw['file'] === 'string') return { kind: 'file', path: expandPath(raw['file'], baseDir) };
  return undefined;
}

/** Why the secret cannot be read right now, or null. Never says anything about its value. */
export function secretProblem(raw: Record<string, unknown>, baseDir: string): string | null {
  const ref = toSecretRef(raw, baseDir);
  if (!ref) return null;
  if (ref.kind === 'env') {
    const v = process.env[ref.name];
    if (v === undefined) return `environment variable ${ref.name} is not set`;
    if (v === '') return `environment variable ${ref.name} is empty`;
    return null;
  }
  if (!existsSync(ref.path)) return `password file ${ref.path} does not exist`;
  return null;
}

/** The plaintext secret. Throws a UserError naming the reference (never the value). */
export function readSecret(ref: SecretRef, what: string): string {
  if (ref.kind === 'env') {
    const v = process.env[ref.name];
    if (v === undefined || v === '') throw new UserError(`${what}: environment variable ${ref.name} is ${v === undefined ? 'not set' : 'empty'}`);
    return v;
  }
  let text: string;
  try {
    text = readFileSync(ref.path, 'utf8');
  } catch (e) {
    throw new UserError(`${what}: cannot read password file ${ref.path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const first = text.split(/\r?\n/)[0] ?? '';
  if (first === '') throw new UserError(`${what}: password file ${ref.path} is empty`);
  return first;
}
