/**
 * Image recipes are data under images/: a base is images/<base>/packages.txt (what debootstrap
 * includes); a layer is images/<name>/Dockerfile with the files it copies, its base named on a
 * `# mailops-base: <base>` line. A tag carries a hash of every file of its recipe and of its base's
 * tag, so editing any recipe file makes a new tag, and an unchanged one finds its image again.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../paths.js';

/** Bump when the build procedure itself changes in a way the recipe files do not show. */
export const BUILDER_VERSION = '2';
/** The Debian release the images are made of, unless a recipe is asked for another (RecipeOptions.suite). */
export const SUITE = 'bookworm';
/** The releases a VPS image can be made of: Debian 12 (Dovecot 2.3) and Debian 13 (Dovecot 2.4). */
export const SUITES = ['bookworm', 'trixie'] as const;

export const defaultImagesDir = `${packageRoot}images/`;

export interface RecipeOptions {
  /** Where the recipes are (default: the package's images/). */
  imagesDir?: string;
  /** Image repository prefix: tags are <namespace>/<name>:<hash> (default mailops, or MAILOPS_IMAGE_NAMESPACE). */
  namespace?: string;
  /** Debian mirror for debootstrap (default deb.debian.org, or MAILOPS_DEBIAN_MIRROR). */
  mirror?: string;
  /** The Debian release of a base image (default SUITE); a layer on it gets it as its SUITE build argument. */
  suite?: string;
}

export const mirrorOf = (o: RecipeOptions): string => o.mirror ?? process.env['MAILOPS_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
export const namespaceOf = (o: RecipeOptions): string => o.namespace ?? process.env['MAILOPS_IMAGE_NAMESPACE'] ?? 'mailops';
export const imagesDirOf = (o: RecipeOptions): string => o.imagesDir ?? defaultImagesDir;
export const suiteOf = (o: RecipeOptions): string => o.suite ?? SUITE;

export function hashOf(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12);
}

export function recipeDir(name: string, o: RecipeOptions = {}): string {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`bad image recipe name: ${name}`);
  const dir = join(imagesDirOf(o), name);
  if (!existsSync(dir)) throw new Error(`no image recipe ${dir}`);
  return dir;
}

/** A hash of every file under a recipe directory (paths and contents). */
export function recipeDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else h.update(`${relative(dir, p)}\0`).update(readFileSync(p)).update('\0');
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** The non-comment, non-blank lines of a recipe list file, trimmed. */
export function readListLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

export const isBaseRecipe = (name: string, o: RecipeOptions = {}): boolean => existsSync(join(recipeDir(name, o), 'packages.txt')) && !existsSync(join(recipeDir(name, o), 'Dockerfile'));

/** The packages debootstrap includes for a base recipe. */
export function basePackages(name: string, o: RecipeOptions = {}): string[] {
  return readListLines(join(recipeDir(name, o), 'packages.txt')).flatMap((l) => l.split(/\s+/));
}

/**
 * What a layer recipe builds on: its `# mailops-base: NAME` line (default: base). NAME is a base recipe
 * (debootstrapped) or another layer (built first, of the same release).
 */
export function layerBase(name: string, o: RecipeOptions = {}): string {
  const text = readFileSync(join(recipeDir(name, o), 'Dockerfile'), 'utf8');
  return /^#\s*mailops-base:\s*([a-z0-9-]+)\s*$/m.exec(text)?.[1] ?? 'base';
}

export function baseTag(name: string, o: RecipeOptions = {}): string {
  return `${namespaceOf(o)}/${name}:${hashOf(BUILDER_VERSION, suiteOf(o), mirrorOf(o), recipeDigest(recipeDir(name, o)))}`;
}

export interface LayerExtra {
  buildArgs?: Record<string, string>;
  /** A hash of a build context made at build time (files that are not in the recipe directory). */
  contextHash?: string;
}

/** The build arguments of a layer of this release: SUITE for every release but the default one. */
export function suiteArgs<T extends LayerExtra>(o: RecipeOptions, extra: T): T {
  return suiteOf(o) === SUITE ? extra : { ...extra, buildArgs: { ...extra.buildArgs, SUITE: suiteOf(o) } };
}

/** The tag of the image a layer builds on: a base's, or (a layer on a layer) that layer's own, with no extras. */
export function parentTag(name: string, o: RecipeOptions = {}): string {
  const parent = layerBase(name, o);
  return isBaseRecipe(parent, o) ? baseTag(parent, o) : layerTag(parent, o, suiteArgs(o, {}));
}

export function layerTag(name: string, o: RecipeOptions = {}, extra: LayerExtra = {}): string {
  const base = parentTag(name, o);
  return `${namespaceOf(o)}/${name}:${hashOf(BUILDER_VERSION, base, recipeDigest(recipeDir(name, o)), JSON.stringify(extra.buildArgs ?? {}), extra.contextHash ?? '')}`;
}

/**
 * The mail stack whose .debs wait in the VPS image's apt cache: one group per line of
 * images/vps/mail-stack.txt (groups that conflict, like postfix and exim4, are downloaded separately).
 */
export function mailStackGroups(o: RecipeOptions = {}): string[][] {
  return readListLines(join(recipeDir('vps', o), 'mail-stack.txt')).map((l) => l.split(/\s+/));
}
