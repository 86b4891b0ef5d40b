/**
 * Where the package's data is: the directory holding package.json, templates/, playbooks/ and images/.
 * Found upwards from this module, so the same code works from src/ (tests), dist/ (tsc) and dist/bundle/
 * (the bundled CLI).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'templates'))) return `${d}/`;
    if (dirname(d) === d) throw new Error(`mailops: no package root (package.json and templates/) above ${from}`);
  }
}

/** The package root, with a trailing slash. */
export const packageRoot = findRoot(dirname(fileURLToPath(import.meta.url)));

/** `~` and `~/...` are the home directory; other relative paths are taken from the working directory. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? resolve(homedir(), p.slice(2)) : resolve(p);
}
