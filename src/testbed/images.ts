/**
 * Images built from Debian packages with no registry: debootstrap → docker import → layers from
 * images/<name>/Dockerfile. Each image is tagged with a hash of its recipe (and of its base), so an
 * unchanged recipe reuses the image and a changed one rebuilds it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../components/load.js';
import { UserError } from '../errors.js';
import { docker, run } from './docker.js';

export type Log = (line: string) => void;

/** The base system every image starts from. */
export const BASE_PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'sudo', 'ca-certificates', 'iproute2', 'procps', 'less', 'netbase'];
const SUITE = 'bookworm';
const MIRROR = process.env['MAILOPS_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';

export const imagesDir = join(packageRoot, 'images');
const cacheDir = () => process.env['MAILOPS_CACHE_DIR'] ?? join(homedir(), '.cache', 'mailops');

const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12);

async function imageExists(tag: string): Promise<boolean> {
  return (await run('docker', ['image', 'inspect', tag])).code === 0;
}

/** Every file of images/<name>/, for the recipe hash. */
function recipeText(name: string): string {
  const dir = join(imagesDir, name);
  if (!existsSync(dir)) throw new Error(`internal: no image recipe ${dir}`);
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(`${p.slice(dir.length)}\n${readFileSync(p, 'utf8')}`);
    }
  };
  walk(dir);
  return files.join('\0');
}

export async function baseImage(log: Log): Promise<string> {
  const tag = `mailops/base:${hash(SUITE, MIRROR, BASE_PACKAGES.join(','))}`;
  if (await imageExists(tag)) return tag;
  const cache = cacheDir();
  mkdirSync(cache, { recursive: true });
  const tarball = join(cache, `${tag.replace(/[/:]/g, '-')}.tar`);
  if (!existsSync(tarball)) {
    if ((await run('sh', ['-c', 'command -v debootstrap'])).code !== 0) {
      log('installing debootstrap (apt-get)...');
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const r = await run('sh', ['-c', 'apt-get install -y -q debootstrap || (apt-get update -q && apt-get install -y -q debootstrap)'], { env });
      if (r.code !== 0) throw new UserError('debootstrap is missing and could not be installed: apt-get install debootstrap');
    }
    const root = join(cache, `rootfs-${process.pid}`);
    rmSync(root, { recursive: true, force: true });
    log(`debootstrap ${SUITE} (about a minute, once)...`);
    let n = 0;
    const r = await run('debootstrap', ['--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, SUITE, root, MIRROR], {
      onLine: (l) => {
        if (/^I: (Retrieving|Validating|Extracting|Installing|Configuring|Unpacking) /.test(l) && ++n % 25 === 0) log(`debootstrap: ${l.slice(3)}`);
      },
    });
    if (r.code !== 0) throw new UserError(`debootstrap failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
    await run('sh', ['-c', `rm -rf ${root}/var/cache/apt/archives/*.deb ${root}/var/lib/apt/lists/* && tar -C ${root} -cf ${tarball}.tmp . && mv ${tarball}.tmp ${tarball}`]);
    rmSync(root, { recursive: true, force: true });
  }
  log(`importing ${tag}...`);
  await docker(['import', tarball, tag]);
  return tag;
}

/** Build images/<name>/Dockerfile on top of the base image. */
export async function image(name: string, log: Log = () => undefined, extra: { buildArgs?: Record<string, string>; contextHash?: string } = {}): Promise<string> {
  const base = await baseImage(log);
  const tag = `mailops/${name}:${hash(base, recipeText(name), JSON.stringify(extra.buildArgs ?? {}), extra.contextHash ?? '')}`;
  if (await imageExists(tag)) return tag;
  log(`building ${tag} (once; later runs reuse it)...`);
  const args = ['build', '--build-arg', `BASE=${base}`, ...Object.entries(extra.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]), '-t', tag, join(imagesDir, name)];
  const r = await run('docker', args, {
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    onLine: (l) => {
      if (/^Step \d+\/\d+/.test(l)) log(`${name}: ${l.slice(0, 100)}`);
    },
  });
  if (r.code !== 0) throw new UserError(`building the ${name} image failed: ${(r.stdout + r.stderr).trim().split('\n').slice(-5).join('\n')}`);
  return tag;
}

export const vpsImage = (log?: Log) => image('vps', log);
export const clientImage = (log?: Log) => image('client', log);

/** A base image with this machine's Node.js, for building the product's Dockerfile without a registry. */
export async function nodeBaseImage(log: Log = () => undefined): Promise<string> {
  const base = await baseImage(log);
  const nodeBin = process.execPath;
  const prefix = join(nodeBin, '..', '..');
  // The CAs this machine trusts (a TLS-inspecting proxy's among them) so npm inside reaches the registry.
  const caFile = process.env['NODE_EXTRA_CA_CERTS'] ?? '/etc/ssl/certs/ca-certificates.crt';
  const ca = existsSync(caFile) ? readFileSync(caFile, 'utf8') : '';
  const tag = `mailops/nodebase:${hash(base, process.version, prefix, ca)}`;
  if (await imageExists(tag)) return tag;
  log(`building ${tag} from this machine's Node ${process.version}...`);
  const ctx = join(cacheDir(), `nodebase-${process.pid}`);
  rmSync(ctx, { recursive: true, force: true });
  mkdirSync(join(ctx, 'node'), { recursive: true });
  await run('sh', ['-c', `cp -a ${prefix}/bin ${ctx}/node/ && mkdir -p ${ctx}/node/lib && cp -a ${prefix}/lib/node_modules ${ctx}/node/lib/ && (cp -a ${prefix}/include ${ctx}/node/ 2>/dev/null || true)`]);
  await run('sh', ['-c', `cat > ${ctx}/host-ca.crt`], { input: ca });
  const dockerfile = `FROM ${base}\nCOPY node /usr/local/\nCOPY host-ca.crt /usr/local/share/mailops/host-ca.crt\nENV NODE_EXTRA_CA_CERTS=/usr/local/share/mailops/host-ca.crt\nRUN node --version && npm --version\n`;
  await run('sh', ['-c', `cat > ${ctx}/Dockerfile`], { input: dockerfile });
  const r = await run('docker', ['build', '-t', tag, ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  rmSync(ctx, { recursive: true, force: true });
  if (r.code !== 0) throw new UserError(`building the node base image failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return tag;
}

