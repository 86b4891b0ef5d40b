/**
 * Containers and networks of the test bed, started through testcontainers. testcontainers is loaded
 * on first use: it is a development dependency, and the CLI (whose `sandbox` command starts VPS
 * containers) should not pay for loading it on every run.
 *
 * What testcontainers does not do the way the test bed needs, done here by subclassing
 * GenericContainer (its hostConfig and createOpts are protected, meant for this):
 * - ports are published on 127.0.0.1 only (withExposedPorts binds every interface);
 * - a container joins its network, with its aliases, when it is created: GenericContainer creates a
 *   container that has aliases on the default bridge and connects it to the network afterwards,
 *   which would leave it on two networks and reachable from every other container of the engine.
 * Ryuk (the reaper) is disabled, its image cannot be pulled here: the test bed removes what it starts
 * (stop(), signal handlers, and the integration run's teardown for crashed runs).
 */
import { randomBytes } from 'node:crypto';
import type { GenericContainer, StartedNetwork, StartedTestContainer } from 'testcontainers';
import type { RunResult } from './docker.js';

type Testcontainers = typeof import('testcontainers');
let loaded: Promise<Testcontainers> | undefined;

export function testcontainers(): Promise<Testcontainers> {
  // The reaper image cannot be pulled here; whoever starts containers removes them.
  process.env['TESTCONTAINERS_RYUK_DISABLED'] ??= 'true';
  return (loaded ??= import('testcontainers'));
}

/** Labels of everything the test bed starts; `mailops.pid` lets a later run find what a dead one left. */
export function testbedLabels(persistent: boolean): Record<string, string> {
  return persistent ? { 'mailops.testbed': '1', 'mailops.persistent': '1' } : { 'mailops.testbed': '1', 'mailops.pid': String(process.pid) };
}

export interface PortSpec {
  container: number;
  protocol?: 'tcp' | 'udp';
  /** The port on 127.0.0.1 (default: one the engine picks). */
  host?: number;
}

export interface BoxSpec {
  image: string;
  /** Container name (unique on the engine). */
  name: string;
  hostname?: string;
  /** Network to join at creation (by name). */
  network: string;
  aliases?: string[];
  labels?: Record<string, string>;
  env?: Record<string, string>;
  ports?: PortSpec[];
  /** systemd as PID 1: SYS_ADMIN and NET_ADMIN, tmpfs on /run and /run/lock, /sys/fs/cgroup read-only. */
  systemd?: boolean;
  /** A shell command that succeeds once the container is ready (default: none, ready when started). */
  ready?: string;
  startupTimeoutMs?: number;
  /** Keep the container's log (stdout and stderr) in memory for log() (the last 4 MB). */
  collectLog?: boolean;
}

export interface Box {
  name: string;
  id: string;
  /** Address on the network it joined. */
  ip: string;
  /** "25/tcp" → its port on 127.0.0.1. */
  ports: Record<string, number>;
  container: StartedTestContainer;
  /** `sh -c COMMAND` as root inside; input (if any) is its stdin. Never throws on a non-zero exit. */
  exec(command: string, input?: string | Buffer): Promise<RunResult>;
  /** What the container printed so far (only with collectLog; otherwise ''). */
  log(): string;
  /** Removes the container (and its anonymous volumes). */
  stop(): Promise<void>;
}

const LOG_LIMIT = 4 << 20;

let subclass: Promise<new (image: string) => LoopbackContainer> | undefined;

interface LoopbackContainer extends GenericContainer {
  publishOnLoopback(ports: PortSpec[]): this;
  joinNetwork(network: string, aliases: string[]): this;
}

async function loopbackContainerClass(): Promise<new (image: string) => LoopbackContainer> {
  return (subclass ??= testcontainers().then(({ GenericContainer }) => {
    class Loopback extends GenericContainer implements LoopbackContainer {
      publishOnLoopback(ports: PortSpec[]): this {
        // withExposedPorts registers the ports (and which of them the started container maps back);
        // the bindings it makes have no HostIp, i.e. every interface: replace them.
        this.withExposedPorts(...ports.map((p) => (p.host ? { container: p.container, host: p.host, protocol: p.protocol ?? 'tcp' } : (`${p.container}/${p.protocol ?? 'tcp'}` as const))));
        const bindings = { ...this.hostConfig.PortBindings };
        for (const p of ports) bindings[`${p.container}/${p.protocol ?? 'tcp'}`] = [{ HostIp: '127.0.0.1', HostPort: String(p.host ?? 0) }];
        this.hostConfig.PortBindings = bindings;
        return this;
      }

      joinNetwork(network: string, aliases: string[]): this {
        // Not withNetworkAliases(): see the top of this file. With no aliases registered there,
        // GenericContainer sets NetworkMode to this network, and the endpoint carries the aliases.
        this.networkMode = network;
        this.createOpts.NetworkingConfig = { EndpointsConfig: { [network]: { Aliases: aliases } } };
        return this;
      }
    }
    return Loopback;
  }));
}

/** Whether an image is there (testcontainers would otherwise try to pull it, and nothing can be pulled here). */
export async function imagePresent(image: string): Promise<boolean> {
  const tc = await testcontainers();
  const client = await tc.getContainerRuntimeClient();
  return client.image.exists(tc.ImageName.fromString(image));
}

export async function startBox(spec: BoxSpec): Promise<Box> {
  const tc = await testcontainers();
  if (!(await imagePresent(spec.image))) throw new Error(`image ${spec.image} is not on this Docker engine (it is built locally, never pulled)`);
  const Loopback = await loopbackContainerClass();
  const c = new Loopback(spec.image).withName(spec.name).withLabels(spec.labels ?? {}).joinNetwork(spec.network, spec.aliases ?? []);
  if (spec.hostname) c.withHostname(spec.hostname);
  if (spec.env) c.withEnvironment(spec.env);
  if (spec.ports?.length) c.publishOnLoopback(spec.ports);
  if (spec.systemd) {
    c.withAddedCapabilities('SYS_ADMIN', 'NET_ADMIN')
      .withTmpFs({ '/run': '', '/run/lock': '' })
      .withBindMounts([{ source: '/sys/fs/cgroup', target: '/sys/fs/cgroup', mode: 'ro' }]);
  }
  // The default strategy waits for the exposed ports to listen; nothing listens in a fresh VPS.
  c.withWaitStrategy(tc.Wait.forSuccessfulCommand(spec.ready ?? 'true')).withStartupTimeout(spec.startupTimeoutMs ?? 90_000);
  let log = '';
  if (spec.collectLog) {
    // A followed log stream whose socket testcontainers unrefs: it ends with the container.
    c.withLogConsumer((stream) => {
      stream.on('data', (d: Buffer | string) => {
        log += d.toString();
        if (log.length > LOG_LIMIT) log = log.slice(-LOG_LIMIT / 2);
      });
      stream.on('error', () => undefined);
    });
  }
  const started = await c.start();
  const ports = spec.ports?.length ? await loopbackPorts(started.getId()) : {};
  for (const p of spec.ports ?? []) {
    const key = `${p.container}/${p.protocol ?? 'tcp'}`;
    if (!ports[key]) {
      await started.stop({ remove: true, removeVolumes: true, timeout: 0 }).catch(() => undefined);
      throw new Error(`${spec.name}: port ${key} is not published on 127.0.0.1`);
    }
  }
  return boxOf(started, spec.name, spec.network, ports, () => log);
}

/**
 * "port/proto" → port on 127.0.0.1, from the engine. Not getMappedPort(): testcontainers keeps one
 * protocol per container port when it maps ports back, so 53/tcp and 53/udp cannot both be read there.
 */
async function loopbackPorts(id: string): Promise<Record<string, number>> {
  const tc = await testcontainers();
  const client = await tc.getContainerRuntimeClient();
  const info = await client.container.inspect(client.container.getById(id));
  const ports: Record<string, number> = {};
  for (const [key, bindings] of Object.entries(info.NetworkSettings.Ports ?? {})) {
    const b = (bindings ?? []).find((x) => x.HostIp === '127.0.0.1');
    if (b) ports[key] = Number(b.HostPort);
  }
  return ports;
}

function boxOf(started: StartedTestContainer, name: string, network: string, ports: Record<string, number>, log: () => string): Box {
  let stopped = false;
  return {
    name,
    id: started.getId(),
    ip: started.getIpAddress(network),
    ports,
    container: started,
    exec: (command, input) => execIn(started, command, input),
    log,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await started.stop({ remove: true, removeVolumes: true, timeout: 0 });
    },
  };
}

/**
 * `sh -c COMMAND` in a container. testcontainers' exec has no stdin, so input is copied into the
 * container first and becomes the command's stdin (the file is unlinked before the command runs). It goes
 * to /var/tmp: on Debian 13 systemd mounts a tmpfs over /tmp, where `docker cp` does not reach.
 */
export async function execIn(container: StartedTestContainer, command: string, input?: string | Buffer): Promise<RunResult> {
  let script = command;
  if (input !== undefined) {
    const file = `/var/tmp/.mailops-stdin-${randomBytes(6).toString('hex')}`;
    await container.copyContentToContainer([{ content: input, target: file, mode: 0o600 }]);
    script = `exec <${file} && rm -f ${file} || exit 125\n${command}`;
  }
  const r = await container.exec(['sh', '-c', script]);
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

export interface Net {
  name: string;
  /** The network's IPv4 subnet, e.g. 172.18.0.0/16. */
  subnet: string;
  gateway: string;
  /** Removes the network (only when this process created it). */
  stop(): Promise<void>;
}

/**
 * A bridge network by name: created through testcontainers (whose Network takes its name from the
 * Uuid it is given), or, when one of that name exists already (a sandbox left over), that one.
 */
export async function startNetwork(name: string): Promise<Net> {
  const tc = await testcontainers();
  const client = await tc.getContainerRuntimeClient();
  let started: StartedNetwork | undefined;
  let id = name;
  try {
    started = await new tc.Network({ nextUuid: () => name }).start();
    id = started.getId();
  } catch (e) {
    if (!/already exists/i.test(String((e as Error).message))) throw e;
  }
  const info = (await client.network.getById(id).inspect()) as { IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> } };
  const cfg = (info.IPAM?.Config ?? []).find((c) => c.Subnet && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(c.Subnet));
  if (!cfg?.Subnet) throw new Error(`network ${name} has no IPv4 subnet`);
  let stopped = false;
  return {
    name,
    subnet: cfg.Subnet,
    gateway: cfg.Gateway ?? '',
    stop: async () => {
      if (stopped || !started) return;
      stopped = true;
      await started.stop();
    },
  };
}

/** Removes containers by name, ignoring those that are gone (for cleanup paths, never throws). */
export async function removeContainers(names: string[]): Promise<void> {
  if (!names.length) return;
  const tc = await testcontainers();
  const client = await tc.getContainerRuntimeClient();
  await Promise.all(
    names.map(async (n) => {
      try {
        await client.container.dockerode.getContainer(n).remove({ force: true, v: true });
      } catch {
        // gone already
      }
    }),
  );
}

/**
 * Removes what test runs that are gone left behind: containers labelled mailops.testbed=1 whose
 * mailops.pid is no longer a running process (never persistent ones, never those of a live run),
 * and the networks `<prefix>-net` of their name prefixes. Returns the names of what was removed.
 */
export async function removeLeftovers(): Promise<string[]> {
  const tc = await testcontainers();
  const client = await tc.getContainerRuntimeClient();
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  const listed = await client.container.dockerode.listContainers({ all: true, filters: { label: ['mailops.testbed=1'] } });
  const dead = listed.filter((c) => {
    const pid = Number(c.Labels?.['mailops.pid']);
    return c.Labels?.['mailops.testbed'] === '1' && c.Labels['mailops.persistent'] !== '1' && pid > 0 && !alive(pid);
  });
  const nameOf = (c: (typeof listed)[number]) => (c.Names[0] ?? c.Id).replace(/^\//, '');
  // <prefix>-<name>: what else a dead run started under its prefix (e.g. a Pebble a test ran with the docker CLI) goes too.
  const prefixes = [...new Set(dead.map((c) => nameOf(c).replace(/-[^-]+$/, '')))];
  const names = listed
    .filter((c) => c.Labels?.['mailops.persistent'] !== '1' && (dead.includes(c) || prefixes.some((p) => nameOf(c).startsWith(`${p}-`))))
    .map(nameOf);
  await removeContainers(names);
  const networks = prefixes.map((p) => `${p}-net`);
  for (const n of networks) {
    try {
      await client.network.remove(client.network.getById(n));
    } catch {
      // not there, or still in use by a live run
    }
  }
  return [...names, ...networks];
}
