/**
 * Images built from Debian packages with no registry. The recipes are data under images/ (see
 * recipes.ts): a base is images/<base>/packages.txt, made with debootstrap and `docker import`; a
 * layer is images/<name>/Dockerfile, built with `docker build` (DOCKER_BUILDKIT=0) on the base its
 * `# mailops-base: NAME` line names. Every tag carries a hash of its recipe (and of its base's tag),
 * so an unchanged recipe reuses the image and a changed one rebuilds it.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadComponents } from '../components/load.js';
import { UserError } from '../errors.js';
import { docker, run, sbinEnv, tail } from './docker.js';
import type { Log } from './log.js';
import { progress, seconds, silent } from './log.js';
import { SUITE, baseTag, basePackages, hashOf, isBaseRecipe, layerBase, layerTag, mirrorOf, recipeDir, suiteArgs, suiteOf } from './recipes.js';
import type { LayerExtra } from './recipes.js';

export type { Log } from './log.js';

const cacheDir = () => process.env['MAILOPS_CACHE_DIR'] ?? join(homedir(), '.cache', 'mailops');

async function imageExists(tag: string): Promise<boolean> {
  return (await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag])).code === 0;
}

/** Once per process: two images may be made at once (their bases of two releases), apt-get only once. */
let debootstrapReady: Promise<void> | undefined;
function ensureDebootstrap(log: Log): Promise<void> {
  debootstrapReady ??= installDebootstrap(log);
  debootstrapReady.catch(() => (debootstrapReady = undefined));
  return debootstrapReady;
}

async function installDebootstrap(log: Log): Promise<void> {
  if ((await run('sh', ['-c', 'command -v debootstrap'], { env: sbinEnv() })).code === 0) return;
  log('installing debootstrap (apt-get)...');
  const env = sbinEnv({ DEBIAN_FRONTEND: 'noninteractive' });
  const r = await run('sh', ['-c', 'apt-get install -y -q debootstrap || (apt-get update -q && apt-get install -y -q debootstrap)'], { env });
  if (r.code !== 0) throw new UserError(`debootstrap is missing and could not be installed (apt-get install debootstrap): ${tail(r)}`);
}

/**
 * The base image images/<name>/packages.txt describes (default `base`): `debootstrap
 * --variant=minbase` with those packages included (none for `minbase`), imported as an image. The
 * root file system tarball is kept in the cache directory, so a removed image is imported again
 * without a new debootstrap.
 */
export async function baseImage(log: Log = silent, name = 'base', suite: string = SUITE): Promise<string> {
  if (!isBaseRecipe(name)) throw new Error(`internal: images/${name} is not a base recipe (it needs packages.txt and no Dockerfile)`);
  const tag = baseTag(name, { suite });
  return once(tag, () => makeBase(log, name, suite, tag));
}

/**
 * Images being made by this process, by tag: a second caller of the same image (two layers on one base,
 * asked for at once) waits for the first one's build instead of starting its own.
 */
const inFlight = new Map<string, Promise<string>>();
function once(tag: string, make: () => Promise<string>): Promise<string> {
  let p = inFlight.get(tag);
  if (!p) {
    p = make().finally(() => inFlight.delete(tag));
    inFlight.set(tag, p);
  }
  return p;
}

async function makeBase(log: Log, name: string, suite: string, tag: string): Promise<string> {
  if (await imageExists(tag)) return tag;
  const cache = cacheDir();
  mkdirSync(cache, { recursive: true });
  const tarball = join(cache, `${tag.replace(/[/:]/g, '-')}.tar`);
  if (!existsSync(tarball)) {
    await ensureDebootstrap(log);
    const packages = basePackages(name);
    const root = join(cache, `rootfs-${name}-${suite}-${process.pid}`);
    rmSync(root, { recursive: true, force: true });
    const t0 = Date.now();
    log(`debootstrap ${suite} for ${tag} (${packages.length ? `${packages.length} packages` : 'minbase'}; about a minute, once)...`);
    const p = progress(`debootstrap ${name}`, log, (l) => (/^E: /.test(l) ? l : undefined));
    const r = await run('debootstrap', ['--variant=minbase', ...(packages.length ? [`--include=${packages.join(',')}`] : []), suite, root, mirrorOf({})], {
      env: sbinEnv(),
      onLine: (l) => p.onLine(l),
    });
    p.done();
    if (r.code !== 0) {
      rmSync(root, { recursive: true, force: true });
      throw new UserError(`debootstrap failed: ${tail(r)}`);
    }
    const t = await run('sh', ['-c', 'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* && tar -C "$1" -cf "$2.$3.tmp" . && mv "$2.$3.tmp" "$2"', 'sh', root, tarball, String(process.pid)]);
    rmSync(root, { recursive: true, force: true });
    if (t.code !== 0) throw new UserError(`packing the ${name} root file system failed: ${tail(t)}`);
    log(`debootstrap ${name} done in ${seconds(t0)}`);
  }
  log(`importing ${tag}...`);
  await docker(['import', tarball, tag]);
  return tag;
}

export interface ImageOptions extends LayerExtra {
  /** The Debian release of the image's base (default SUITE); the layer gets it as its SUITE build argument. */
  suite?: string;
  /**
   * Makes the build context in the (empty, existing) directory it is given, when the image has to
   * be built; the recipe's own files are copied there first. Its inputs belong in `contextHash`.
   */
  prepareContext?: (dir: string) => Promise<void>;
}

/** Builds images/<name>/Dockerfile on the base its `# mailops-base:` line names (default `base`). */
export async function image(name: string, log: Log = silent, extra: ImageOptions = {}): Promise<string> {
  const suite = suiteOf(extra);
  // The default release adds no build argument: its tags are those of a recipe that has none.
  extra = suiteArgs({ suite }, extra);
  const tag = layerTag(name, { suite }, extra);
  return once(tag, () => makeLayer(name, log, extra, suite, tag));
}

async function makeLayer(name: string, log: Log, extra: ImageOptions, suite: string, tag: string): Promise<string> {
  if (await imageExists(tag)) return tag;
  const parent = layerBase(name);
  const base = isBaseRecipe(parent) ? await baseImage(log, parent, suite) : await image(parent, log, { suite });
  let context = recipeDir(name);
  let scratch: string | undefined;
  if (extra.prepareContext) {
    scratch = join(cacheDir(), `context-${name}-${process.pid}`);
    rmSync(scratch, { recursive: true, force: true });
    cpSync(context, scratch, { recursive: true });
    await extra.prepareContext(scratch);
    context = scratch;
  }
  const t0 = Date.now();
  log(`building ${tag} on ${base} (once; later runs reuse it)...`);
  const p = progress(`build ${name}`, log, (l) => (/^Step \d+\/\d+/.test(l) ? l : undefined));
  const args = ['build', '--build-arg', `BASE=${base}`, ...Object.entries(extra.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]), '--label', `mailops.recipe=${name}`, '-t', tag, context];
  const r = await run('docker', args, { env: { ...process.env, DOCKER_BUILDKIT: '0' }, onLine: (l) => p.onLine(l) });
  p.done();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  if (r.code !== 0) throw new UserError(`building the ${name} image failed:\n${(r.stdout + r.stderr).trim().split('\n').slice(-8).join('\n')}`);
  log(`built ${tag} in ${seconds(t0)}`);
  return tag;
}

/** A plain Debian VPS of this release (default SUITE): images/vps on the base debootstrapped from it. */
export const vpsImage = (log?: Log, suite?: string) => image('vps', log, suite ? { suite } : {});
/**
 * What mailops installs on a Debian host of this MTA with every feature on: the packages of every component
 * playbook but the other MTA's (a component named for one MTA only, by its `when: { mta }`).
 */
export function stackPackages(mta: 'postfix' | 'exim'): string[] {
  const out = new Set<string>();
  for (const spec of loadComponents()) {
    const only = (spec.when as { mta?: string } | undefined)?.mta;
    if (only !== undefined && only !== mta) continue;
    for (const p of spec.packages?.debian ?? []) out.add(typeof p === 'string' ? p : p.name);
  }
  return [...out].sort();
}

/**
 * A VPS of this release with the mail stack of this MTA installed and none of its daemons running
 * (images/stack): for tests whose subject is not installing packages.
 */
export const stackImage = (mta: 'postfix' | 'exim', log?: Log, suite?: string) =>
  image('stack', log, { ...(suite ? { suite } : {}), buildArgs: { PACKAGES: stackPackages(mta).join(' ') } });
export const clientImage = (log?: Log) => image('client', log);
/** The world's authoritative DNS server (BIND 9). */
export const dnsImage = (log?: Log) => image('dns', log);
/** The world's strict receiving MTA (Postfix + OpenDKIM + OpenDMARC + policyd-spf). */
export const peerImage = (log?: Log) => image('peer', log);

/**
 * images/nodebase: this machine's Node.js on the bare base, for building the product's Dockerfile
 * without a registry. Its build context (node/, host-ca.crt) is made here; their identity is in the tag.
 */
export async function nodeBaseImage(log: Log = silent): Promise<string> {
  const prefix = join(process.execPath, '..', '..');
  // The CAs this machine trusts (a TLS-inspecting proxy's among them) so npm inside reaches the registry.
  const caFile = process.env['NODE_EXTRA_CA_CERTS'] ?? '/etc/ssl/certs/ca-certificates.crt';
  const ca = existsSync(caFile) ? readFileSync(caFile, 'utf8') : '';
  return image('nodebase', log, {
    // What is copied is part of the tag: a change of it builds the image again.
    contextHash: hashOf(process.version, prefix, ca, 'node npm npx corepack'),
    prepareContext: async (dir) => {
      log(`copying this machine's Node ${process.version} into the build context...`);
      mkdirSync(join(dir, 'node', 'lib'), { recursive: true });
      // node, npm, npx and corepack only: Node's bin directory may be the system's /usr/bin.
      const r = await run('sh', ['-c', 'mkdir -p "$2/node/bin" && for b in node npm npx corepack; do [ ! -e "$1/bin/$b" ] || cp -a "$1/bin/$b" "$2/node/bin/"; done && cp -a "$1/lib/node_modules" "$2/node/lib/" && { mkdir -p "$2/node/include" && cp -a "$1/include/node" "$2/node/include/" 2>/dev/null || true; }', 'sh', prefix, dir]);
      if (r.code !== 0) throw new UserError(`copying Node.js from ${prefix} failed: ${tail(r)}`);
      writeFileSync(join(dir, 'host-ca.crt'), ca);
    },
  });
}
/** The world's smarthost (Postfix + Cyrus SASL): relays for clients that log in on 587/2525/465. */
export const relayImage = (log?: Log) => image('relay', log);
