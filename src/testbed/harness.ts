/**
 * VPS containers for tests and the sandbox: N containers with systemd as PID 1 on a network of their
 * own, started through testcontainers (containers.ts), an SSH key injected, host keys read back,
 * ports published on 127.0.0.1 only, always cleaned up (also on failure and on SIGINT/SIGTERM) unless
 * persistent.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Box } from './containers.js';
import { removeContainers, startBox, startNetwork, testbedLabels } from './containers.js';
import type { Net } from './containers.js';
import { run } from './docker.js';
import type { RunResult } from './docker.js';

/** The ports a VPS container publishes: SSH, the mail ports, and HTTPS (autoconfiguration, the MTA-STS policy). */
export const MAIL_PORTS = [22, 25, 110, 143, 443, 465, 587, 993, 995];

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
  /**
   * The only resolver of every host (an IP, e.g. the mail world's DNS server): /etc/resolv.conf gets
   * `nameserver <ip>` alone, written in place (Docker bind-mounts the file). Not Docker's --dns: with
   * that, Docker's embedded resolver still answers PTR queries for container addresses itself.
   */
  dns?: string;
}

/**
 * Shell that makes `nameserver IP` the only line of /etc/resolv.conf, in place (same inode), and keeps it
 * in /etc/testbed-resolv.conf, which the VPS image puts back at boot (Docker rewrites resolv.conf when a
 * container restarts).
 */
export const resolvConfCommand = (ip: string) => `printf 'nameserver %s\\n' '${ip}' > /etc/resolv.conf && cp /etc/resolv.conf /etc/testbed-resolv.conf`;

const SYSTEMD_READY = `s=$(systemctl is-system-running 2>/dev/null); case "$s" in running|degraded) exit 0;; *) exit 1;; esac`;

async function waitFor(what: string, probe: () => Promise<boolean>, seconds = 60): Promise<void> {
  for (let i = 0; i < seconds * 4; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Cleanup for things that must go when the process is interrupted: runs once, from stop() or from
 * SIGINT/SIGTERM (then the signal is raised again, so the process ends the way it would have). The
 * handler stays registered until the cleanup is done: signal-exit (a dependency of dependencies)
 * kills the process at once when it finds itself the last listener of a signal.
 */
export function cleanupOnSignals(persistent: boolean, cleanup: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const unhook = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const stop = () => (done ??= cleanup().finally(unhook));
  function onSignal(sig: NodeJS.Signals) {
    void stop().finally(() => process.kill(process.pid, sig));
  }
  if (!persistent) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  return stop;
}

/** The SSH identity in keyDir (made once). */
export async function sshIdentity(keyDir: string): Promise<{ identity: string; publicKey: string }> {
  const identity = join(keyDir, 'id_ed25519');
  if (!existsSync(identity)) {
    const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mailops-sandbox', '-f', identity]);
    if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  }
  return { identity, publicKey: readFileSync(`${identity}.pub`, 'utf8').trim() };
}

export interface VpsBoxes {
  hosts: VpsHost[];
  boxes: Box[];
}

/**
 * Starts VPS containers on an existing network and makes them ready: systemd up, the resolver set,
 * the key authorised, sshd running, the host key read back. Container names are `${prefix}-${name}`.
 */
export async function startVpsBoxes(o: {
  image: string;
  /** By name: a host of another image than `image`. */
  images?: Record<string, string>;
  names: string[];
  prefix: string;
  network: string;
  publish: number[];
  aliases?: Record<string, string[]>;
  publicKey: string;
  persistent: boolean;
  dns?: string;
  /** Called with each container name before it is created (so a failed start is still cleaned up). */
  track: (container: string) => void;
}): Promise<VpsBoxes> {
  // All are started together; on a failure, wait for the others to settle so none is left behind.
  const boxes = await settleAll(
    o.names.map((name) => {
      const container = `${o.prefix}-${name}`;
      o.track(container);
      return startBox({
        image: o.images?.[name] ?? o.image,
        name: container,
        hostname: name,
        network: o.network,
        aliases: [name, ...(o.aliases?.[name] ?? [])],
        labels: testbedLabels(o.persistent),
        ports: o.publish.map((p) => ({ container: p })),
        systemd: true,
        ready: SYSTEMD_READY,
        startupTimeoutMs: 120_000,
      });
    }),
  );
  const hosts = await settleAll(
    boxes.map(async (box, i): Promise<VpsHost> => {
      const name = o.names[i]!;
      const must = async (what: string, cmd: string, input?: string) => {
        const r = await box.exec(cmd, input);
        if (r.code !== 0) throw new Error(`${box.name}: ${what} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
        return r.stdout;
      };
      if (o.dns) await must('setting the resolver', resolvConfCommand(o.dns));
      await must('authorising the SSH key', 'umask 077; mkdir -p /root/.ssh && cat >> /root/.ssh/authorized_keys', `${o.publicKey}\n`);
      await waitFor(`sshd in ${box.name}`, async () => (await box.exec('test -s /etc/ssh/ssh_host_ed25519_key.pub && systemctl is-active ssh')).code === 0);
      const hostKey = (await must('reading the host key', 'cat /etc/ssh/ssh_host_ed25519_key.pub')).trim().split(/\s+/).slice(0, 2).join(' ');
      const ports: Record<number, number> = {};
      for (const p of o.publish) ports[p] = box.ports[`${p}/tcp`]!;
      return { name, container: box.name, ip: box.ip, ports, hostKey };
    }),
  );
  return { hosts, boxes };
}

/** Promise.all that waits for every promise before rejecting with the first failure. */
export async function settleAll<T>(promises: Array<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** exec and addUser of a cluster, over its boxes. */
export function clusterOps(boxes: Map<string, Box>, publicKey: string): Pick<VpsCluster, 'exec' | 'addUser'> {
  const exec = async (h: VpsHost, command: string, input?: string) => {
    const box = boxes.get(h.container);
    if (!box) throw new Error(`no running container ${h.container}`);
    return box.exec(command, input);
  };
  return {
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
  };
}

export async function startVps(opts: StartOptions): Promise<VpsCluster> {
  const id = randomBytes(3).toString('hex');
  const prefix = opts.prefix ?? `mailops-t${id}`;
  const names = opts.names ?? Array.from({ length: opts.count ?? 1 }, (_, i) => `vps${i + 1}`);
  const networkName = opts.network ?? `${prefix}-net`;
  const persistent = opts.persistent ?? false;
  const keyDir = opts.keyDir ?? mkdtempSync(join(tmpdir(), 'mailops-key-'));
  const containers: string[] = [];
  let net: Net | undefined;
  const stop = cleanupOnSignals(persistent, async () => {
    await removeContainers(containers);
    await net?.stop().catch(() => undefined);
    if (!opts.keyDir) rmSync(keyDir, { recursive: true, force: true });
  });
  try {
    const { identity, publicKey } = await sshIdentity(keyDir);
    net = await startNetwork(networkName);
    const { hosts, boxes } = await startVpsBoxes({
      image: opts.image,
      names,
      prefix,
      network: net.name,
      publish: opts.publish ?? MAIL_PORTS,
      ...(opts.aliases ? { aliases: opts.aliases } : {}),
      publicKey,
      persistent,
      ...(opts.dns ? { dns: opts.dns } : {}),
      track: (c) => containers.push(c),
    });
    return {
      network: net.name,
      hosts,
      identity,
      publicKey,
      ...clusterOps(new Map(boxes.map((b) => [b.name, b])), publicKey),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
