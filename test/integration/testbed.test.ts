/** The test bed itself: cached images, VPS containers on their own network, SSH with the returned host key, cleanup. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { run, tryRun } from '../../src/testbed/docker.js';
import { image, nodeBaseImage, vpsImage } from '../../src/testbed/images.js';
import { startVps } from '../../src/testbed/harness.js';
import { repo } from './support/env.js';

describe('test bed', () => {
  it('reuses a built image: same tag, no rebuild', async () => {
    const t0 = performance.now();
    const tag = await vpsImage();
    expect(tag).toBe(inject('vpsImage'));
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it('starts two VPS containers on one network: systemd PID 1, SSH with the returned host key, names resolve, apt cache ready; cleanup removes all', async () => {
    const cluster = await startVps({ image: inject('vpsImage'), count: 2 });
    const [a, b] = cluster.hosts as [(typeof cluster.hosts)[0], (typeof cluster.hosts)[0]];
    try {
      expect((await cluster.exec(a, 'readlink /proc/1/exe')).stdout.trim()).toMatch(/systemd$/);
      const kh = join(mkdtempSync(join(tmpdir(), 'mailops-tb-')), 'known_hosts');
      writeFileSync(kh, `[127.0.0.1]:${a.ports[22]} ${a.hostKey}\n`);
      const ssh = spawnSync('ssh', ['-i', cluster.identity, '-p', String(a.ports[22]), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${kh}`, 'root@127.0.0.1', 'hostname'], { encoding: 'utf8', timeout: 30_000 });
      expect(ssh.status, ssh.stderr).toBe(0);
      expect(ssh.stdout.trim()).toBe('vps1');
      expect(a.hostKey).not.toBe(b.hostKey);
      const ping = await cluster.exec(a, `getent hosts vps2 && (exec 3<>/dev/tcp/vps2/22 2>/dev/null || true)`);
      expect(ping.stdout).toContain(b.ip);
      expect((await cluster.exec(a, 'ls /var/cache/apt/archives/ | grep -c -E "^(postfix|dovecot-core|exim4-daemon-heavy|opendkim)_"')).stdout.trim()).toBe('4');
      expect((await cluster.exec(a, 'dpkg -l postfix dovecot-core exim4-daemon-heavy 2>/dev/null | grep -c ^ii')).stdout.trim()).toBe('0');
    } finally {
      await cluster.stop();
    }
    const left = await run('docker', ['ps', '-aq', '--filter', `name=${a.container}`]);
    expect(left.stdout.trim()).toBe('');
    expect((await run('docker', ['network', 'inspect', cluster.network])).code).not.toBe(0);
  });

  it('builds the product Dockerfile on a local Node base; mailops --help, validate and render run in it, from the build\'s prebuilt work', async () => {
    const base = await nodeBaseImage((l) => process.stderr.write(`[testbed] ${l}\n`));
    const tag = 'mailops/cli:test';
    const b = await run('docker', ['build', '--build-arg', `BASE=${base}`, '-t', tag, repo], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    expect(b.code, b.stdout.slice(-2000) + b.stderr.slice(-2000)).toBe(0);
    const help = await run('docker', ['run', '--rm', tag, '--help']);
    expect(help.code).toBe(0);
    for (const c of ['validate', 'render', 'plan', 'apply', 'verify']) expect(help.stdout).toContain(c);
    // MAILOPS_PREBUILT=require: the image's CLI compiles no template, playbook or schema at run time.
    const v = await run('docker', ['run', '--rm', '-v', `${repo}playbooks/examples:/work:ro`, '-e', 'MAILOPS_BOB_PASSWORD=x', '-e', 'MAILOPS_PREBUILT=require', tag, 'validate', 'contract.yaml']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toContain('valid');
    const r = await run('docker', ['run', '--rm', '-v', `${repo}playbooks/examples:/work:ro`, '-e', 'MAILOPS_BOB_PASSWORD=x', '-e', 'MAILOPS_PREBUILT=require', '--entrypoint', 'sh', tag, '-c', 'cp contract.yaml /tmp/ && node /opt/mailops/dist/cli.js render --out /tmp/out /tmp/contract.yaml >/dev/null && find /tmp/out -type f | wc -l']);
    expect(r.code, r.stderr).toBe(0);
    expect(Number(r.stdout.trim())).toBeGreaterThan(30);
  });

  it('runs local commands through zx: quiet, never throws on exit codes, input, line streaming, timeout 124, missing command 127', async () => {
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string | Uint8Array) => (written.push(String(c)), true)) as typeof process.stdout.write;
    process.stderr.write = ((c: string | Uint8Array) => (written.push(String(c)), true)) as typeof process.stderr.write;
    const lines: string[] = [];
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run('sh', ['-c', 'echo out; echo err >&2; printf "no newline"; exit 3'], { onLine: (l) => lines.push(l) });
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    expect(written).toEqual([]);
    expect(r).toEqual({ code: 3, stdout: 'out\nno newline', stderr: 'err\n' });
    expect(lines.sort()).toEqual(['err', 'out']);
    expect(await run('cat', [], { input: "it's $(not) run\n" })).toEqual({ code: 0, stdout: "it's $(not) run\n", stderr: '' });
    expect((await run('printf', ['%s|', '', 'a b', '$HOME', '*'])).stdout).toBe('|a b|$HOME|*|');
    // Without input, stdin is empty (never this process's own).
    expect((await run('sh', ['-c', 'cat; echo end'])).stdout).toBe('end\n');
    expect((await run('pwd', [], { cwd: '/' })).stdout).toBe('/\n');
    const t0 = Date.now();
    expect((await run('sleep', ['30'], { timeoutMs: 300 })).code).toBe(124);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await expect(run('mailops-no-such-command', [])).rejects.toThrow(/ENOENT/);
    expect((await tryRun('mailops-no-such-command', [])).code).toBe(127);
  });

  it('builds other images from the same builder (a client box with swaks)', async () => {
    const tag = await image('client');
    expect(tag).toBe(inject('clientImage'));
    const r = await run('docker', ['run', '--rm', tag, 'swaks', '--version']);
    expect(r.code).toBe(0);
  });
});
