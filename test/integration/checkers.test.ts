/**
 * The daemons' own checkers on every golden rendered tree (Debian cases), inside the VPS image with the
 * packages installed (Debian 13's for the Dovecot 2.4 cases, Debian 12's for the others): `postfix check` (no warnings), `exim -bV`, `doveconf -n`, `opendkim -n`, `rspamadm
 * configtest`, `sievec` (the junk filter), `fail2ban-client --test` and `fail2ban-regex` (the filter counts
 * exactly the lines Dovecot writes for a failed login), `policyd-rate-limit --get-config`.
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVps } from '../../src/testbed/harness.js';
import type { VpsCluster, VpsHost } from '../../src/testbed/harness.js';

const golden = new URL('../golden/', import.meta.url).pathname;

function tree(dir: string): Array<{ path: string; content: string }> {
  const out: Array<{ path: string; content: string }> = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: `/${relative(dir, p)}`, content: readFileSync(p, 'utf8') });
    }
  };
  walk(dir);
  return out;
}

/** Debian hosts of the golden cases, with their MTA. */
const targets = readdirSync(golden)
  .filter((c) => existsSync(join(golden, c, 'expected')))
  .flatMap((c) =>
    readdirSync(join(golden, c, 'expected'))
      .filter((h) => h !== 'dns')
      .map((h) => ({ name: `${c}/${h}`, dir: join(golden, c, 'expected', h) })),
  )
  .filter((t) => !t.name.startsWith('rhel/'))
  .map((t) => ({
    ...t,
    mta: existsSync(join(t.dir, 'etc/exim4/exim4.conf')) ? ('exim' as const) : ('postfix' as const),
    // Dovecot 2.4's configuration on Debian 13's daemons; a host without Dovecot (a backup MX) on Debian 12's.
    release: existsSync(join(t.dir, 'etc/dovecot/dovecot.conf')) && /^dovecot_config_version = 2\.4/m.test(readFileSync(join(t.dir, 'etc/dovecot/dovecot.conf'), 'utf8')) ? ('trixie' as const) : ('bookworm' as const),
  }));

for (const release of ['bookworm', 'trixie'] as const) {
  describe(`daemon checkers on the rendered configs${release === 'bookworm' ? '' : ', Debian 13'}`, () => {
    let cluster: VpsCluster;
    let vps: VpsHost;
    const sh = async (cmd: string) => {
      const r = await cluster.exec(vps, cmd);
      return { ...r, all: `${r.stdout}${r.stderr}` };
    };

    beforeAll(async () => {
      // The mail stack is installed already (images/stack); what it lacks (policyd-rate-limit on Debian 13, an
      // MTA of the other kind) is installed here.
      cluster = await startVps({ image: inject(release === 'bookworm' ? 'stackImage' : 'stackTrixieImage'), count: 1, publish: [22] });
      vps = cluster.hosts[0]!;
      // No daemon starts while they install (fail2ban's own defaults would start an sshd jail).
      const r = await sh(
        "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-sieve opendkim opendkim-tools rspamd fail2ban python3-systemd policyd-rate-limit 2>&1",
      );
      expect(r.code, r.all).toBe(0);
    });
    afterAll(async () => cluster?.stop());

    it(`hash-password output verifies with doveadm pw -t (Dovecot ${release === 'bookworm' ? '2.3' : '2.4'})`, async () => {
      const { spawnSync } = await import('node:child_process');
      const pw = 'correct horse battery staple';
      const hash = spawnSync(process.execPath, [new URL('../../dist/cli.js', import.meta.url).pathname, 'hash-password'], { input: pw, encoding: 'utf8' }).stdout.trim();
      expect(hash).toMatch(/^\{SHA512-CRYPT\}\$6\$/);
      const ok = await sh(`doveadm pw -t '${hash}' -p '${pw}' 2>&1`);
      expect(ok.code, ok.all).toBe(0);
      expect(ok.all).toMatch(/verified/);
      const bad = await sh(`doveadm pw -t '${hash}' -p 'wrong' 2>&1`);
      expect(bad.code).not.toBe(0);
    });

    for (const mta of ['postfix', 'exim'] as const) {
      for (const t of targets.filter((x) => x.mta === mta && x.release === release)) {
        it(`${t.name} (${mta})`, async () => {
          const pkg = mta === 'postfix' ? 'postfix' : 'exim4-daemon-heavy';
          const inst = await sh(`DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${pkg} 2>&1`);
          expect(inst.code, inst.all).toBe(0);
          const files = tree(t.dir);
          for (const f of files) {
            const w = await cluster.exec(vps, `mkdir -p "$(dirname '${f.path}')" && cat > '${f.path}'`, f.content);
            expect(w.code, w.stderr).toBe(0);
          }
          // What apply creates on the host: users, TLS certificate and DKIM keys at the rendered paths.
          const certs = [...new Set(files.flatMap((f) => [...f.content.matchAll(/(?:smtpd_tls_cert_file = |ssl_cert = <|ssl_server_cert_file = |tls_certificate = )(\S+)/g)].map((m) => m[1]!)))];
          const keys = [...new Set(files.flatMap((f) => [...f.content.matchAll(/(?:smtpd_tls_key_file = |ssl_key = <|ssl_server_key_file = |tls_privatekey = )(\S+)/g)].map((m) => m[1]!)))];
          for (const [i, cert] of certs.entries()) {
            const key = keys[i] ?? `${cert}.key`;
            await sh(`mkdir -p "$(dirname ${cert})" "$(dirname ${key})"; [ -f ${cert} ] || openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test -keyout ${key} -out ${cert} 2>/dev/null`);
          }
          const dkim = files.filter((f) => /KeyTable$|dkim_keys$/.test(f.path)).flatMap((f) => [...f.content.matchAll(/(\/\S+\.key)\s*$/gm)].map((m) => m[1]!));
          for (const k of dkim) await sh(`mkdir -p "$(dirname ${k})"; [ -f ${k} ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ${k} 2>/dev/null; chown root:opendkim ${k} "$(dirname ${k})"; chmod 0640 ${k}; chmod 0750 "$(dirname ${k})"`);
          await sh('getent group vmail >/dev/null || groupadd -r -g 5000 vmail; getent passwd vmail >/dev/null || useradd -r -u 5000 -g vmail -d /var/vmail -M vmail');

          if (files.some((f) => f.path === '/etc/fail2ban/jail.d/mailops.local')) {
            const f2b = await sh('fail2ban-client --test 2>&1');
            expect(f2b.code, f2b.all).toBe(0);
            expect(f2b.all.trim()).toBe('OK: configuration test is successful');
            // The lines Dovecot 2.3 and 2.4 write (as fail2ban's journal backend sees them): a failed password or
            // an unknown user counts once per login, with or without a session id; nothing else counts.
            const counted = [
              'mx1 dovecot[4341]: auth: passwd-file(alice@pf.test,172.23.0.5): Password mismatch',
              'mx1 dovecot[4341]: auth: passwd-file(alice@pf.test,172.23.0.5,<svDQnPJg4qysFwAF>): Password mismatch',
              'mx1 dovecot[4341]: auth: passwd-file(nobody@pf.test,2001:db8::5,<7nAlnfJgfLesFwAF>): unknown user',
              'mx1 dovecot[5220]: auth(alice@pf.test,172.23.0.5,sasl:plain)<DIwmCQRhBo2sFAAB>: users: Password mismatch',
              'mx1 dovecot[5220]: auth(nobody@pf.test,2001:db8::5,sasl:login)<S649CQRhEI2sFAAB>: users: unknown user',
            ];
            const ignored = [
              'mx1 dovecot[4341]: imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 6 secs): user=<alice@pf.test>, method=PLAIN, rip=172.23.0.5, lip=172.23.0.4, TLS, session=<svDQnPJg4qysFwAF>',
              'mx1 dovecot[4815]: auth: User found from deny passdb',
              'mx1 dovecot[4815]: imap-login: Login: user=<alice@pf.test>, method=PLAIN, rip=172.23.0.5, lip=172.23.0.4, mpid=4821, TLS, session=<cCsPo/JgXLSsFwAF>',
              'mx1 dovecot[5832]: auth: Username character disallowed by auth_username_chars: 0x3d (username: SRS0=F/R2=JM=peer.test=sender@pf.test)',
              'mx1 dovecot[5220]: imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): user=<alice@pf.test>, method=PLAIN, rip=172.23.0.5, lip=172.23.0.4, TLS: Connection closed, session=<DIwmCQRhBo2sFAAB>',
              'mx1 dovecot[5220]: auth(nobody@pf.test): users: unknown user',
            ];
            for (const [line, n] of [...counted.map((l) => [l, 1] as const), ...ignored.map((l) => [l, 0] as const)]) {
              const m = await cluster.exec(vps, "fail2ban-regex --print-all-matched -v \"$(cat)\" /etc/fail2ban/filter.d/mailops-auth.conf 2>&1", `Nov 23 14:43:13 ${line}`);
              expect(m.stdout, line).toMatch(new RegExp(`^Lines: 1 lines, 0 ignored, ${n} matched`, 'm'));
              if (n) expect(m.stdout, line).toMatch(/\|\s+(172\.23\.0\.5|2001:db8::5)\s/);
            }
          }
          if (files.some((f) => f.path === '/etc/policyd-rate-limit.yaml')) {
            const rl = await sh('policyd-rate-limit --file /etc/policyd-rate-limit.yaml --get-config limits_by_id 2>&1');
            expect(rl.code, rl.all).toBe(0);
            expect(rl.all).toMatch(/^\{'[^']+@[^']+': \[\[\d+, (3600|86400)\]\]/);
          }
          const dove = await sh('doveconf -n 2>&1 >/dev/null');
          expect(dove.all.trim(), 'doveconf -n prints no warning').toBe('');
          if (files.some((f) => f.path.startsWith('/etc/rspamd/'))) {
            // Not --strict: that also fails when the public fuzzy servers' names do not resolve (here they never do).
            const rc = await sh('rspamadm configtest 2>&1');
            expect(rc.code, rc.all).toBe(0);
            expect(rc.all).toMatch(/^syntax OK$/m);
          }
          for (const f of files.filter((x) => x.path.endsWith('.sieve'))) {
            const sv = await sh(`sievec '${f.path}' /tmp/checked.svbin 2>&1`);
            expect(sv.code, sv.all).toBe(0);
            expect(sv.all.trim(), 'sievec prints nothing').toBe('');
          }
          if (mta === 'postfix') {
            const pc = await sh('postfix check 2>&1');
            expect(pc.code, pc.all).toBe(0);
            // Debian 13's also brings the chroot's copies of /etc files up to date, a line each: no warning.
            expect(pc.all.replace(/^updating \/\S+ => \/.*\n/gm, '').trim(), 'postfix check prints no warning').toBe('');
            const pn = await sh('postconf -n 2>&1 >/dev/null');
            expect(pn.all.trim()).toBe('');
            if (files.some((f) => f.path === '/etc/opendkim.conf')) {
              const od = await sh('opendkim -n -x /etc/opendkim.conf 2>&1');
              expect(od.code, od.all).toBe(0);
              expect(od.all.trim()).toBe('');
            }
          } else {
            const ex = await sh('exim -bV 2>&1');
            expect(ex.code, ex.all).toBe(0);
            expect(ex.all).toContain('Configuration file is /etc/exim4/exim4.conf');
            expect(ex.all).not.toMatch(/warning|error/i);
          }
        });
      }
    }
  });
}
