/**
 * The quick start's main job as a user runs it: `sandbox up` starts the mail world for the example
 * playbook, `apply --sandbox` converges the host and publishes its zones, `verify --sandbox` passes every
 * check with none skipped (DNS asked of the sandbox's server, the HTTPS endpoint through the published
 * port 443, the peer's verdict on our mail), and
 * `sandbox down` removes it all. A sandbox of its own (directory and name prefix), so a user's stays.
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../src/testbed/docker.js';
import { cli, repo } from './support/env.js';

const dir = mkdtempSync(join(tmpdir(), 'mailops-sbx-'));
const prefix = `mailops-sbxt${process.pid}`;
const env = { MAILOPS_SANDBOX_DIR: join(dir, 'state'), MAILOPS_SANDBOX_PREFIX: prefix, MAILOPS_ALICE_PASSWORD: 'alice-Sandbox-1', MAILOPS_BOB_PASSWORD: 'bob-Sandbox-2' };
const site = join(dir, 'site.yaml');
copyFileSync(join(repo, 'playbooks', 'examples', 'sandbox.yaml'), site);

afterAll(async () => {
  await cli(['sandbox', 'down'], env);
});

describe('the sandbox, as the quick start uses it', () => {
  it('sandbox up: a VPS, a DNS server serving the zones, a receiving peer; status shows them', async () => {
    const up = await cli(['sandbox', 'up', '--json', site], env);
    expect(up.code, up.stderr).toBe(0);
    const st = JSON.parse(up.stdout) as { hosts: Array<{ name: string; role: string; state: string; ip?: string }> };
    expect(st.hosts.map((h) => [h.role, h.state])).toEqual([
      ['host', 'running'],
      ['dns', 'running'],
      ['peer', 'running'],
    ]);
    const status = await cli(['sandbox', 'status'], env);
    expect(status.stdout).toMatch(/^DNS server \(.*-dns, running\) at [0-9.]+: the hosts' only resolver/m);
    expect(status.stdout).toMatch(/^receiving peer mx\.peer\.test/m);
  });

  it('apply --sandbox converges and publishes the zones with the containers\' real addresses; verify --sandbox: 0 failed, 0 skipped, the peer says pass', async () => {
    const a = await cli(['apply', '--sandbox', '--yes', '--json', site], env);
    expect(a.code, a.stderr).toBe(0);
    const out = JSON.parse(a.stdout) as { changes: number; dns: { ok: boolean; changes: number } };
    expect(out.dns.ok).toBe(true);
    expect(out.dns.changes).toBeGreaterThan(10);
    const v = await cli(['verify', '--sandbox', '--json', site], env);
    const res = JSON.parse(v.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; detail: string }> };
    const bad = res.checks.filter((c) => c.status !== 'ok');
    expect(bad, JSON.stringify(bad, null, 1)).toEqual([]);
    expect(v.code).toBe(0);
    expect(v.stderr).toMatch(/^Verify: \d+ passed, 0 failed, 0 skipped$/m);
    // The HTTPS endpoint is reached through the sandbox's published port 443, by name (SNI and Host).
    const https = res.checks.filter((c) => c.name.startsWith('HTTPS ')).map((c) => c.name);
    for (const n of ['HTTPS certificate: autoconfig.example.test', 'HTTPS Apple profile: https://autoconfig.example.test/apple/bob.mobileconfig', 'HTTPS MTA-STS policy: https://mta-sts.shop.example.test/.well-known/mta-sts.txt']) expect(https).toContain(n);
    expect(res.checks.map((c) => c.name)).toContain('MTA-STS policy lists the MX of shop.example.test');
    const peer = res.checks.filter((c) => c.name.startsWith('deliverability '));
    expect(peer.map((c) => c.name)).toEqual(['deliverability example.test → peer.test', 'deliverability shop.example.test → peer.test']);
    expect(peer[1]!.detail).toMatch(/^the peer's verdict: dkim=pass \(ed25519-sha256, s=shop\), dkim=pass \(rsa-sha256, s=shop-rsa\), spf=pass, dmarc=pass, HELO mail\.example\.test, PTR mail\.example\.test \[[0-9.]+\], over TLSv1\.[23]$/);
  });

  it('sandbox down removes every container and the network', async () => {
    const d = await cli(['sandbox', 'down'], env);
    expect(d.code, d.stderr).toBe(0);
    expect((await run('docker', ['ps', '-aq', '--filter', `name=^${prefix}-`])).stdout.trim()).toBe('');
    expect((await run('docker', ['network', 'inspect', `${prefix}-net`])).code).not.toBe(0);
    expect((await cli(['sandbox', 'status'], env)).stdout).toMatch(/^no sandbox/);
  });
});
