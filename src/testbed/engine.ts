/**
 * A Docker engine on demand: use the one that answers; otherwise, as root on Debian/Ubuntu, install
 * docker.io and start dockerd (reusing one started earlier, never two); otherwise say what to install.
 */
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { UserError } from '../errors.js';
import { run } from './docker.js';

const PIDFILE = '/run/mailops-dockerd.pid';
const LOG = '/var/log/mailops-dockerd.log';

async function answers(): Promise<boolean> {
  try {
    return (await run('docker', ['info', '--format', '{{.ServerVersion}}'])).code === 0;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function which(cmd: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${cmd}`])).code === 0;
}

export async function ensureDockerEngine(log: (line: string) => void = () => undefined): Promise<void> {
  if (await answers()) return;
  const root = process.getuid?.() === 0;
  const debian = existsSync('/etc/debian_version');
  if (!root || !debian) {
    throw new UserError('no Docker engine answers: install and start Docker (e.g. `apt-get install docker.io` then `dockerd &`, or Docker Desktop), then try again');
  }
  const pid = existsSync(PIDFILE) ? Number(readFileSync(PIDFILE, 'utf8').trim()) : 0;
  if (!(pid > 0 && alive(pid))) {
    if (!(await which('dockerd'))) {
      log('installing docker.io (apt-get)...');
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      let r = await run('apt-get', ['install', '-y', '-q', 'docker.io', 'iptables'], { env });
      if (r.code !== 0) {
        await run('apt-get', ['update', '-q'], { env });
        r = await run('apt-get', ['install', '-y', '-q', 'docker.io', 'iptables'], { env });
      }
      if (r.code !== 0) throw new UserError(`could not install docker.io: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
    }
    log('starting dockerd...');
    const out = openSync(LOG, 'a');
    const child = spawn('dockerd', ['--pidfile', '/run/mailops-dockerd.docker.pid'], { detached: true, stdio: ['ignore', out, out] });
    child.unref();
    writeFileSync(PIDFILE, String(child.pid));
  }
  for (let i = 0; i < 120; i++) {
    if (await answers()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new UserError(`dockerd did not answer within 60 s; see ${LOG}`);
}
