/**
 * Apply under faults, for both MTAs: a daemon that fails after the swap, certificates that cannot serve,
 * a backup that cannot be written, a run killed in each phase, a reboot, a dropped connection. After
 * each fault the host is in the old or the new state (never a mix), SMTP answers, IMAP login works and
 * no mail was lost; the next apply converges.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { run } from '../../src/testbed/docker.js';
import { startVps } from '../../src/testbed/harness.js';
import type { VpsCluster, VpsHost } from '../../src/testbed/harness.js';
import type { World } from '../../src/testbed/world.js';
import { Wire } from '../../src/verify/wire.js';
import { PASSWORDS, cli, hostYaml, startVpsWorld, writePlaybook } from './support/env.js';
import { eventually, imapFetchAll, message, smtp } from './support/mail.js';
import type { Ep } from './support/mail.js';

const alice = { user: 'alice@example.test', password: PASSWORDS.IT_ALICE_PASSWORD };
const MB = 1024 * 1024;

interface Opts {
  size?: number;
  tls?: string;
}

function playbook(cluster: VpsCluster, h: VpsHost, mta: 'postfix' | 'exim', o: Opts = {}): string {
  return `site: it-faults-${mta}
hosts:
${hostYaml(cluster, h, { hostname: 'mail.example.test' })}
stack:
  mta: ${mta}
  pop3: false
  tls: ${o.tls ?? '{ mode: self-signed }'}
  message_size_limit: ${o.size ?? 2}M
dns:
  nameservers: [ns1.example.test]
domains:
  - name: example.test
    mailboxes:
      - name: alice
        password: { env: IT_ALICE_PASSWORD }
    aliases:
      postmaster: alice
`;
}

const MTA_UNIT = { postfix: 'postfix', exim: 'exim4' } as const;
const MTA_CONF = { postfix: '/etc/postfix/main.cf', exim: '/etc/exim4/exim4.conf' } as const;

for (const mta of ['postfix', 'exim'] as const) {
  describe(`apply under faults (${mta})`, () => {
    let world: World;
    let cluster: VpsCluster;
    let vps: VpsHost;
    let file: string;
    let ep: Ep;
    let size = 2;
    let delivered = 0;
    const exec = async (cmd: string) => {
      const r = await cluster.exec(vps, cmd);
      return r.stdout.trim();
    };
    const write = (o: Opts = {}) => {
      writeFileSync(file, playbook(cluster, vps, mta, { size, ...o }));
    };
    const apply = (...extra: string[]) => cli(['apply', '--yes', ...extra, file], PASSWORDS);
    const sizeOnHost = async () => Number(/message_size_limit = (\d+)/.exec(await exec(`cat ${MTA_CONF[mta]}`))?.[1]);
    const lastHistory = async () => (await exec('tail -n 1 /var/lib/mailops/history.log')).split('\t')[2];
    const journal = () => exec('cat "$(ls -1dt /var/lib/mailops/runs/*/ | head -n 1)journal" 2>/dev/null');

    /** SMTP answers, the services run, IMAP login works and every message delivered so far is there. */
    async function healthy(): Promise<void> {
      expect((await exec(`systemctl is-active ${MTA_UNIT[mta]} dovecot`)).split('\n')).toEqual(['active', 'active']);
      const w = await Wire.open({ host: '127.0.0.1', port: ep.port(25), timeoutMs: 10000 });
      try {
        expect((await w.smtpReply()).text).toMatch(/^220 mail\.example\.test ESMTP/);
      } finally {
        w.close();
      }
      const box = await eventually(() => imapFetchAll(ep, alice.user, alice.password), (m) => m.length >= delivered, 30);
      expect(box.length).toBe(delivered);
    }

    async function deliver(subject: string): Promise<void> {
      const s = await smtp(ep, { port: 25, from: 'someone@sender.example', to: [alice.user], body: message('someone@sender.example', alice.user, subject) });
      expect(s.stage, s.reply.text).toBe('done');
      delivered++;
    }

    beforeAll(async () => {
      // Mail comes from this test process, a sender with FCrDNS and SPF in the world's DNS.
      world = await startVpsWorld({ vps: inject(mta === 'postfix' ? 'stackImage' : 'stackEximImage'), dns: inject('dnsImage') }, [{ name: 'vps1', hostname: 'mail.example.test' }]);
      cluster = world.vps;
      vps = cluster.hosts[0]!;
      ep = { host: '127.0.0.1', port: (p) => vps.ports[p]! };
      file = writePlaybook(playbook(cluster, vps, mta));
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
      await deliver('before the faults');
      await healthy();
    });
    afterAll(async () => world?.stop());

    it('a daemon that passes its checker but fails after the swap: the previous files come back by rename, the services run again, exit 1, history says rolled-back', async () => {
      // The MTA refuses to (re)start or reload with the new configuration: its checker has no objection.
      const guard = `/bin/sh -c '! grep -qs "message_size_limit = ${3 * MB}" ${MTA_CONF[mta]}'`;
      await exec(`mkdir -p /etc/systemd/system/${MTA_UNIT[mta]}.service.d && printf '[Service]\\nExecStartPre=%s\\nExecReload=%s\\n' "${guard.replace(/"/g, '\\"')}" "${guard.replace(/"/g, '\\"')}" > /etc/systemd/system/${MTA_UNIT[mta]}.service.d/fault.conf && systemctl daemon-reload`);
      size = 3;
      write();
      const r = await apply();
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/apply failed; the previous configuration was restored and its services run/);
      expect(r.stdout + r.stderr).toMatch(new RegExp(`systemctl (reload|restart) ${MTA_UNIT[mta]}`));
      expect(await sizeOnHost()).toBe(2 * MB);
      expect(await lastHistory()).toBe('rolled-back');
      await healthy();
      await exec(`rm -rf /etc/systemd/system/${MTA_UNIT[mta]}.service.d && systemctl daemon-reload`);
      const ok = await apply();
      expect(ok.code, ok.stderr).toBe(0);
      expect(await sizeOnHost()).toBe(3 * MB);
      await healthy();
    });

    it('certificates that cannot serve (garbage, expired, not matching the key) are refused before anything is activated; one for another name is a warning', async () => {
      await exec(
        [
          'set -e; d=/etc/mailops-test; mkdir -p $d; cd $d',
          'openssl req -x509 -newkey rsa:2048 -nodes -keyout a.key -out good.crt -subj /CN=mail.example.test -addext subjectAltName=DNS:mail.example.test -days 30 2>/dev/null',
          'openssl genpkey -algorithm RSA -out b.key 2>/dev/null',
          'echo "this is not a certificate" > garbage.crt',
          // Expired yesterday: a negative validity for x509 -req.
          'openssl req -new -key a.key -subj /CN=mail.example.test -out e.csr && openssl x509 -req -in e.csr -signkey a.key -days -1 -out expired.crt 2>/dev/null',
          'openssl req -x509 -key a.key -out other.crt -subj /CN=other.example -addext subjectAltName=DNS:other.example -days 30 2>/dev/null',
          'chmod 644 *',
        ].join('; '),
      );
      const cases: Array<[string, string, RegExp]> = [
        ['garbage.crt', 'a.key', /garbage\.crt is not a certificate \(PEM\): nothing was activated/],
        ['expired.crt', 'a.key', /expired\.crt has expired \(notAfter=.*\): nothing was activated/],
        ['good.crt', 'b.key', /good\.crt does not belong to the key \/etc\/mailops-test\/b\.key: nothing was activated/],
      ];
      const before = await exec(`cat ${MTA_CONF[mta]}`);
      for (const [cert, key, why] of cases) {
        write({ tls: `{ mode: files, cert: /etc/mailops-test/${cert}, key: /etc/mailops-test/${key} }` });
        const r = await apply();
        expect(r.code, r.stderr).toBe(1);
        expect(r.stdout + r.stderr).toMatch(why);
        expect(await exec(`cat ${MTA_CONF[mta]}`)).toBe(before);
        await healthy();
      }
      write({ tls: '{ mode: files, cert: /etc/mailops-test/other.crt, key: /etc/mailops-test/a.key }' });
      const w = await apply();
      expect(w.code, w.stderr).toBe(0);
      expect(w.stdout).toMatch(/warning: the certificate \/etc\/mailops-test\/other\.crt does not name mail\.example\.test: clients will warn/);
      await healthy();
      write();
      expect((await apply()).code).toBe(0);
    });

    it('the backup cannot be written (a read-only filesystem under it): nothing is swapped', async () => {
      await exec('mkdir -p /var/lib/mailops/backup && mount -t tmpfs -o ro,size=64k tmpfs /var/lib/mailops/backup');
      try {
        size = 4;
        write();
        const r = await apply();
        expect(r.code).toBe(1);
        expect(r.stdout + r.stderr).toMatch(/could not keep a copy of .* \(is the disk full or read-only\?\): nothing was swapped/);
        expect(await sizeOnHost()).toBe(3 * MB);
        await healthy();
      } finally {
        await exec('umount /var/lib/mailops/backup');
      }
      const ok = await apply();
      expect(ok.code, ok.stderr).toBe(0);
      expect(await sizeOnHost()).toBe(4 * MB);
    });

    for (const phase of ['backup', 'swapping', 'handlers'] as const) {
      it(`a run killed with SIGKILL during "${phase}": the next plan says so and what it left behind, the next apply converges`, async () => {
        size += 1;
        write();
        await exec(`mkdir -p /run/mailops && echo ${phase} > /run/mailops/hold`);
        const running = apply();
        await eventually(journal, (j) => j === phase, 60);
        await exec("pkill -KILL -f 'sh /var/lib/mailops/runs/.*/activate.sh'");
        await exec('rm -f /run/mailops/hold');
        const r = await running;
        expect(r.code).toBe(1);
        const p = await cli(['plan', file], PASSWORDS);
        expect(p.stdout).toMatch(new RegExp(`an earlier apply \\(run [0-9T-]+-[0-9a-f]+\\) was interrupted during "${phase}": `));
        if (phase !== 'backup') expect(p.stdout).toMatch(/an earlier apply was interrupted after swapping files in/);
        const ok = await apply();
        expect(ok.code, ok.stderr).toBe(0);
        expect(await sizeOnHost()).toBe(size * MB);
        expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
        await healthy();
      });
    }

    it('the connection drops during the run: the CLI reconnects, reads the run\'s result on the host and reports it', async () => {
      size += 1;
      write();
      await exec('mkdir -p /run/mailops && echo handlers > /run/mailops/hold');
      const running = apply();
      await eventually(journal, (j) => j === 'handlers', 60);
      // Every SSH session of the host dies; the run itself goes on (it ignores SIGHUP).
      await exec("pkill -KILL -f 'sshd: root@notty' || true");
      await new Promise((r) => setTimeout(r, 2000));
      await exec('rm -f /run/mailops/hold');
      const r = await running;
      expect(r.stderr).toMatch(/connection lost: reconnecting/);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/nothing was activated/);
      expect(await sizeOnHost()).toBe(size * MB);
      expect(await lastHistory()).toBe('ok');
      await healthy();
    });

    it('the host restarts right after apply: every service, the firewall and mail flow come back on their own', async () => {
      const d = await run('docker', ['restart', '-t', '20', vps.container]);
      expect(d.code, d.stderr).toBe(0);
      for (const line of (await run('docker', ['port', vps.container])).stdout.split('\n')) {
        const m = /^(\d+)\/tcp -> 127\.0\.0\.1:(\d+)$/.exec(line.trim());
        if (m) vps.ports[Number(m[1])] = Number(m[2]);
      }
      await eventually(() => exec('systemctl is-system-running 2>/dev/null || true'), (s) => /^(running|degraded)$/.test(s), 90);
      expect(await exec('nft list table inet mailops >/dev/null && echo firewall')).toBe('firewall');
      await deliver('after the restart');
      await healthy();
      // The SSH port published for this container changed with the restart: the next apply follows it.
      write();
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
    });
  });
}

describe('packages start no daemon before the validated configuration is in place', () => {
  let cluster: VpsCluster;
  afterAll(async () => cluster?.stop());

  it('on a fresh host, Postfix and Dovecot are installed but not running until the handlers start them', async () => {
    cluster = await startVps({ image: inject('vpsImage'), count: 1 });
    const vps = cluster.hosts[0]!;
    const exec = async (cmd: string) => (await cluster.exec(vps, cmd)).stdout.trim();
    const file = writePlaybook(playbook(cluster, vps, 'postfix'));
    await exec('mkdir -p /run/mailops && echo backup > /run/mailops/hold');
    const running = cli(['apply', '--yes', file], PASSWORDS);
    await eventually(() => exec('cat /var/lib/mailops/runs/*/journal 2>/dev/null'), (j) => j === 'backup', 120);
    expect(await exec('dpkg-query -W -f=\'${db:Status-Abbrev}\' postfix dovecot-core')).toBe('ii ii');
    expect(await exec('systemctl is-active postfix@- dovecot || true')).toMatch(/^(inactive|failed)\n(inactive|failed)$/);
    expect(await exec("ss -Hltn | awk '{print $4}' | grep -cE ':(25|143|993)$' || true")).toBe('0');
    await exec('rm -f /run/mailops/hold');
    const r = await running;
    expect(r.code, r.stderr).toBe(0);
    expect(await exec('systemctl is-active postfix dovecot')).toBe('active\nactive');
    expect(await exec('[ -e /usr/sbin/policy-rc.d ] && echo left || echo gone')).toBe('gone');
  });
});
