/**
 * VPS containers for tests and the sandbox: N containers on a network of their own, an SSH key injected,
 * host keys read back, ports published on 127.0.0.1 only, always cleaned up (also on failure and Ctrl-C).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, run } from './docker.js';
import type { RunResult } from './docker.js';

export const MAIL_PORTS = [22, 25, 110, 143, 465, 587, 993, 995];

export interface VpsHost {
  name: string;
  container: string;
  /** Address on the cluster's network. */
  ip: string;
  /** Container port → port on 127.0.0.1. */
  ports: Record<number, number>;
  /** "ssh-ed25519 AAAA..." */
  hostKey: string;
}

export interface VpsCluster {
  network: string;
  hosts: VpsHost[];
  /** Private key that root (and the sudo user, when made) accepts. */
  identity: string;
  publicKey: string;
  exec(host: VpsHost, command: string, input?: string): Promise<RunResult>;
  /** A non-root user with the same key; passwordless sudo unless `sudo: false`. */
  addUser(host: VpsHost, user: string, opts?: { sudo?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  image: string;
  count?: number;
  names?: string[];
  prefix?: string;
  publish?: number[];
  /** Keep the cluster when the process exits (the sandbox); tests leave it false. */
  persistent?: boolean;
  network?: string;
  keyDir?: string;
  /** More names each host answers to on the network (host name → aliases), e.g. its mail host name. */
  aliases?: Record<string, string[]>;
}

export const VPS_RUN_ARGS = ['--cap-add', 'SYS_ADMIN', '--cap-add', 'NET_ADMIN', '--tmpfs', '/run', '--tmpfs', '/run/lock', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:ro'];

async function waitFor(what: string, probe: () => Promise<boolean>, seconds = 60): Promise<void> {
  for (let i = 0; i < seconds * 4; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function startVps(opts: StartOptions): Promise<VpsCluster> {
  const id = randomBytes(3).toString('hex');
  const prefix = opts.prefix ?? `mailops-t${id}`;
  const names = opts.names ?? Array.from({ length: opts.count ?? 1 }, (_, i) => `vps${i + 1}`);
  const network = opts.network ?? `${prefix}-net`;
  const keyDir = opts.keyDir ?? mkdtempSync(join(tmpdir(), 'mailops-key-'));
  const identity = join(keyDir, 'id_ed25519');
  const containers: string[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (containers.length) await run('docker', ['rm', '-f', '-v', ...containers]);
    await run('docker', ['network', 'rm', network]);
    if (!opts.keyDir) rmSync(keyDir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    void stop().finally(() => process.kill(process.pid, sig));
  };
  if (!opts.persistent) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    if (!existsSync(identity)) {
      const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mailops-sandbox', '-f', identity]);
      if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
    }
    const publicKey = readFileSync(`${identity}.pub`, 'utf8').trim();
    if ((await run('docker', ['network', 'inspect', network])).code !== 0) await docker(['network', 'create', network]);
    const hosts: VpsHost[] = [];
    for (const name of names) {
      const container = `${prefix}-${name}`;
      const publish = (opts.publish ?? MAIL_PORTS).flatMap((p) => ['-p', `127.0.0.1::${p}`]);
      await docker(['run', '-d', '--name', container, '--hostname', name, '--network', network, '--network-alias', name, ...(opts.aliases?.[name] ?? []).flatMap((a) => ['--network-alias', a]), ...VPS_RUN_ARGS, ...publish, '--label', 'mailops.testbed=1', opts.image]);
      containers.push(container);
    }
    for (const [i, name] of names.entries()) {
      const container = containers[i]!;
      await waitFor(`systemd in ${container}`, async () => {
        const r = await run('docker', ['exec', container, 'systemctl', 'is-system-running']);
        return /^(running|degraded)/.test(r.stdout.trim());
      });
      await docker(['exec', '-i', container, 'sh', '-c', 'umask 077; mkdir -p /root/.ssh && cat >> /root/.ssh/authorized_keys'], { input: `${publicKey}\n` });
      await waitFor(`sshd in ${container}`, async () => (await run('docker', ['exec', container, 'sh', '-c', 'test -s /etc/ssh/ssh_host_ed25519_key.pub && systemctl is-active ssh'])).code === 0);
      const hostKey = (await docker(['exec', container, 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).split(/\s+/).slice(0, 2).join(' ');
      const ip = await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container]);
      const ports: Record<number, number> = {};
      for (const line of (await docker(['port', container])).split('\n')) {
        const m = /^(\d+)\/tcp -> 127\.0\.0\.1:(\d+)$/.exec(line.trim());
        if (m) ports[Number(m[1])] = Number(m[2]);
      }
      hosts.push({ name, container, ip, ports, hostKey });
    }
    const exec = (h: VpsHost, command: string, input?: string) => run('docker', ['exec', '-i', h.container, 'sh', '-c', command], input === undefined ? {} : { input });
    return {
      network,
      hosts,
      identity,
      publicKey,
      exec,
      addUser: async (h, user, o = {}) => {
        const sudo = o.sudo !== false;
        const r = await exec(
          h,
          `id ${user} >/dev/null 2>&1 || useradd -m -s /bin/sh ${user}; mkdir -p /home/${user}/.ssh; cat > /home/${user}/.ssh/authorized_keys; chown -R ${user}: /home/${user}/.ssh; chmod 700 /home/${user}/.ssh; chmod 600 /home/${user}/.ssh/authorized_keys; ${sudo ? `echo '${user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/${user}; chmod 440 /etc/sudoers.d/${user}` : `rm -f /etc/sudoers.d/${user}`}`,
          `${publicKey}\n`,
        );
        if (r.code !== 0) throw new Error(`adding user ${user} failed: ${r.stderr}`);
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
