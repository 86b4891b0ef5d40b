/**
 * Where the package's data is: the directory holding package.json, templates/, playbooks/ and images/.
 * Found upwards from this module, so the same code works from src/ (tests), dist/ (tsc) and dist/bundle/
 * (the bundled CLI).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'templates'))) return `${d}/`;
    if (dirname(d) === d) throw new Error(`mailops: no package root (package.json and templates/) above ${from}`);
  }
}

/** The package root, with a trailing slash. */
export const packageRoot = findRoot(dirname(fileURLToPath(import.meta.url)));
