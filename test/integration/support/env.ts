/** Shared helpers of the integration tests: run the CLI, write playbooks for test containers. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VpsCluster, VpsHost } from '../../../src/testbed/harness.js';
import { startWorld, txtData } from '../../../src/testbed/world.js';
import type { World } from '../../../src/testbed/world.js';

export const repo = new URL('../../../', import.meta.url).pathname;
export const cliPath = join(repo, 'dist', 'cli.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], env: Record<string, string> = {}, opts: { killAfterMs?: number; onStderr?: (s: string) => void; signalOn?: { match: RegExp; signal: NodeJS.Signals } } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(d.toString());
      if (opts.signalOn && opts.signalOn.match.test(stderr)) {
        p.kill(opts.signalOn.signal);
        opts = { ...opts, signalOn: undefined };
      }
    });
    if (opts.killAfterMs !== undefined) setTimeout(() => p.kill('SIGKILL'), opts.killAfterMs);
    p.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 9) : -1), stdout, stderr }));
  });
}

/** The `hosts:` entry reaching a test container through its published SSH port, key and pinned host key. */
export function hostYaml(cluster: VpsCluster, h: VpsHost, o: { name?: string; hostname: string; ipv4?: string; user?: string }): string {
  return [
    `  - name: ${o.name ?? h.name}`,
    '    ssh:',
    '      address: 127.0.0.1',
    `      port: ${h.ports[22]}`,
    `      user: ${o.user ?? 'root'}`,
    `      identity: ${cluster.identity}`,
    `      host_key: "${h.hostKey}"`,
    `    hostname: ${o.hostname}`,
    `    ipv4: ${o.ipv4 ?? '192.0.2.25'}`,
  ].join('\n');
}

/** The `dns:` section of a playbook for a domain served by the mail world's DNS: TSIG-signed updates, glue. */
export function worldDnsYaml(world: World, dom: string, more: string[] = []): string {
  return [
    'dns:',
    '  ttl: 300',
    '  nameservers:',
    `    - { name: ns1.${dom}, ipv4: ${world.dns.ip} }`,
    '  update:',
    `    server: 127.0.0.1:${world.dns.port}`,
    `    key: { file: ${world.dns.keyFile} }`,
    ...more.map((l) => `  ${l}`),
  ].join('\n');
}

export function writePlaybook(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-it-'));
  const file = join(dir, 'site.yaml');
  writeFileSync(file, text);
  return file;
}

/** A complete playbook for one test container, with the contract's features. */
export function scenarioPlaybook(cluster: VpsCluster, h: VpsHost, mta: 'postfix' | 'exim', extra: { mailboxes?: string; aliases?: string; stack?: string } = {}): string {
  return `site: it-${mta}
hosts:
${hostYaml(cluster, h, { hostname: 'mail.example.test' })}
stack:
  mta: ${mta}
  imap: true
  pop3: true
  tls: { mode: self-signed }
  message_size_limit: 2M
${extra.stack ?? ''}
dns:
  nameservers: [ns1.example.test]
domains:
  - name: example.test
    dkim: { selector: mail, key: rsa-2048 }
    mailboxes:
      - name: alice
        password: { env: IT_ALICE_PASSWORD }
        quota: 1G
      - name: bob
        password: { env: IT_BOB_PASSWORD }
        send_as: [sales]
        quota: 1M
${extra.mailboxes ?? ''}
    aliases:
      postmaster: alice
      sales: [alice, bob]
      partners: [alice, someone@partner.example]
${extra.aliases ?? ''}
  - name: other.test
    mailboxes:
      - name: carol
        password: { env: IT_ALICE_PASSWORD }
    catch_all: carol
`;
}

export const PASSWORDS = { IT_ALICE_PASSWORD: 'alice-Secret-1', IT_BOB_PASSWORD: 'bob-Secret-2' };

/** The name the test process gives in EHLO when it talks SMTP to a host, and the domain it sends from. */
export const TEST_CLIENT = 'client.mailops.test';
export const SENDER_DOMAIN = 'sender.example';

/** The first address of an IPv4 subnet ("172.18.0.0/16" → "172.18.0.1"): Docker's gateway. */
export function gatewayOf(subnet: string): string {
  const [ip, bits] = subnet.split('/') as [string, string];
  const n = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0) & (bits === '0' ? 0 : ~((1 << (32 - Number(bits))) - 1));
  return [24, 16, 8, 0].map((sh) => ((n + 1) >>> sh) & 255).join('.');
}

/**
 * VPS containers in a mail world of their own (its DNS server, no peer), in which the test process looks
 * like a real mail server to them. It reaches them through their published ports, i.e. from the network's
 * gateway; that address gets the PTR client.mailops.test, confirmed forward, the name the tests give in
 * EHLO; and sender.example, the domain they send from, has an MX and an SPF record naming it. rspamd
 * judges mail from there as it judges a legitimate sender's: junking or refusing it would be an error.
 */
export async function startVpsWorld(images: { vps: string; dns: string }, hosts: Array<{ name: string; hostname: string; image?: string }>): Promise<World> {
  const world = await startWorld({ images, hosts, peer: false });
  try {
    const gateway = gatewayOf(world.subnet);
    await world.setRecords('mailops.test', [`add ${TEST_CLIENT}. 60 A ${gateway}`]);
    await world.setPtr(gateway, TEST_CLIENT);
    await world.addZone(SENDER_DOMAIN);
    await world.setRecords(SENDER_DOMAIN, [`add ${SENDER_DOMAIN}. 60 MX 10 ${TEST_CLIENT}.`, `add ${SENDER_DOMAIN}. 60 TXT ${txtData(`v=spf1 ip4:${gateway} -all`)}`]);
    return world;
  } catch (e) {
    await world.stop();
    throw e;
  }
}
