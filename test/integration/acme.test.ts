/** tls.mode acme against a local ACME CA (Pebble): certbot gets the certificate, the MTA and Dovecot serve it. */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVps } from '../../src/testbed/harness.js';
import type { VpsCluster } from '../../src/testbed/harness.js';
import { image } from '../../src/testbed/images.js';
import { run } from '../../src/testbed/docker.js';
import { Wire } from '../../src/verify/wire.js';
import { PASSWORDS, cli, hostYaml, writePlaybook } from './support/env.js';

describe('ACME certificates', () => {
  let cluster: VpsCluster;
  let pebble = '';
  beforeAll(async () => {
    cluster = await startVps({ image: inject('stackImage'), count: 1, aliases: { vps1: ['mail.example.test', 'imap.example.test', 'smtp.example.test', 'autoconfig.example.test', 'autodiscover.example.test', 'mta-sts.example.test'] } });
    pebble = `${cluster.network}-pebble`;
    const tag = await image('pebble');
    const r = await run('docker', ['run', '-d', '--name', pebble, '--network', cluster.network, '--network-alias', 'pebble', '--label', 'mailops.testbed=1', tag]);
    expect(r.code, r.stderr).toBe(0);
    // The VPS trusts Pebble's directory certificate, as a host trusts its CA's.
    const cert = await run('docker', ['exec', pebble, 'cat', '/etc/pebble/cert.pem']);
    const t = await cluster.exec(cluster.hosts[0]!, 'cat > /usr/local/share/ca-certificates/pebble.crt && update-ca-certificates >/dev/null', cert.stdout);
    expect(t.code, t.stderr).toBe(0);
  });
  afterAll(async () => {
    if (pebble) await run('docker', ['rm', '-f', pebble]);
    await cluster?.stop();
  });

  const playbook = (mta: 'postfix' | 'exim') =>
    writePlaybook(`site: it-acme
hosts:
${hostYaml(cluster, cluster.hosts[0]!, { hostname: 'mail.example.test' })}
stack:
  mta: ${mta}
  tls: { mode: acme, email: hostmaster@example.test, acme_server: "https://pebble:14000/dir" }
dns: { nameservers: [ns1.example.test] }
domains:
  - name: example.test
    mailboxes:
      - { name: alice, password: { env: IT_ALICE_PASSWORD } }
`);
  /** Every TLS port serves the CA's certificate, with every name the zone points at the host. */
  const servesAcme = async () => {
    const h = cluster.hosts[0]!;
    for (const [port, tls] of [[465, true], [993, true]] as const) {
      const w = await Wire.open({ host: '127.0.0.1', port: h.ports[port]!, tls, servername: 'mail.example.test' });
      w.close();
      for (const n of ['mail.example.test', 'imap.example.test', 'smtp.example.test', 'autoconfig.example.test', 'autodiscover.example.test', 'mta-sts.example.test']) expect(w.tlsInfo?.subjectNames).toContain(n);
      expect(w.tlsInfo?.selfSigned).toBe(false);
    }
  };

  it('apply obtains the certificate with certbot and every TLS port serves it', async () => {
    const h = cluster.hosts[0]!;
    const file = playbook('postfix');
    const r = await cli(['apply', '--yes', file], PASSWORDS);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await servesAcme();
    const issuer = await cluster.exec(h, 'openssl x509 -noout -issuer -in /etc/letsencrypt/live/mail.example.test/fullchain.pem');
    expect(issuer.stdout).toMatch(/Pebble/i);
    // The certificate guard is planned from the certificate the facts read: nothing to do.
    expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
  });

  it('switched to Exim, the host keeps its certificate (no new order), Exim reads and serves it, and the re-plan is empty', async () => {
    const h = cluster.hosts[0]!;
    const serial = async () => (await cluster.exec(h, 'openssl x509 -noout -serial -in /etc/letsencrypt/live/mail.example.test/cert.pem')).stdout.trim();
    const before = await serial();
    expect(before).toMatch(/^serial=/);
    const file = playbook('exim');
    const plan = await cli(['plan', file], PASSWORDS);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).not.toMatch(/ACME certificate for/);
    const r = await cli(['apply', '--yes', file], PASSWORDS);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await serial()).toBe(before);
    expect((await cluster.exec(h, 'stat -c %G /etc/letsencrypt/archive')).stdout.trim()).toBe('Debian-exim');
    // Exim runs now (Postfix's master does not), and serves the CA's certificate on the TLS ports.
    expect((await cluster.exec(h, 'systemctl is-active exim4.service; pidof exim4 >/dev/null && echo exim; pidof master || echo no-postfix')).stdout.split('\n')).toEqual(['active', 'exim', 'no-postfix', '']);
    await servesAcme();
    expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
  });
});
