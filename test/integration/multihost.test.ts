/** Two hosts, several domains: both converge in one parallel apply, each signs with its own DKIM key. */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { startVps } from '../../src/testbed/harness.js';
import type { VpsCluster } from '../../src/testbed/harness.js';
import { readState } from '../../src/state/state.js';
import { PASSWORDS, cli, hostYaml, writePlaybook } from './support/env.js';
import { eventually, imapFetchAll, message, smtp } from './support/mail.js';

describe('several hosts', () => {
  let cluster: VpsCluster;
  let file: string;
  beforeAll(async () => {
    cluster = await startVps({ image: inject('stackImage'), count: 2 });
    const [a, b] = cluster.hosts;
    file = writePlaybook(`site: it-multi
hosts:
${hostYaml(cluster, a!, { name: 'mx-a', hostname: 'mx1.example.test', ipv4: '192.0.2.31' })}
${hostYaml(cluster, b!, { name: 'mx-b', hostname: 'mx2.example.test', ipv4: '192.0.2.32' })}
stack: { mta: postfix, pop3: false }
dns: { nameservers: [ns1.example.test] }
domains:
  - name: example.test
    dkim: { selector: mail }
    mailboxes:
      - { name: alice, password: { env: IT_ALICE_PASSWORD } }
  - name: second.test
    dkim: { selector: s1, key: ed25519 }
    mailboxes:
      - { name: bob, password: { env: IT_BOB_PASSWORD } }
    aliases: { postmaster: alice@example.test }
`);
  });
  afterAll(async () => cluster?.stop());

  it('applies to both hosts in parallel and records every host\'s DKIM key; the zone publishes them all', async () => {
    const r = await cli(['apply', '--yes', '--json', file], PASSWORDS);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { hosts: Array<{ name: string; ok: boolean; changes: number }> };
    expect(out.hosts.map((h) => [h.name, h.ok])).toEqual([
      ['mx-a', true],
      ['mx-b', true],
    ]);
    const keys = Object.keys(readState(file).dkim).sort();
    // The Ed25519 domain has an RSA companion key per host (dual signing, RFC 8463).
    expect(keys).toEqual(['mail-2._domainkey.example.test', 'mail._domainkey.example.test', 's1-2._domainkey.second.test', 's1-rsa-2._domainkey.second.test', 's1-rsa._domainkey.second.test', 's1._domainkey.second.test']);
    const zone = await cli(['dns', file], PASSWORDS);
    expect(zone.stdout).toMatch(/^mail\._domainkey\s+IN TXT/m);
    expect(zone.stdout).toMatch(/^mail-2\._domainkey\s+IN TXT/m);
    expect(zone.stdout).toMatch(/^@\s+IN MX\s+20 mx2\.example\.test\.$/m);
  });

  it('mail submitted on the second host carries a DKIM signature of its own selector that verifies', async () => {
    const b = cluster.hosts[1]!;
    const ep = { host: '127.0.0.1', port: (p: number) => b.ports[p]! };
    const alice = { user: 'alice@example.test', password: PASSWORDS.IT_ALICE_PASSWORD };
    const s = await smtp(ep, { port: 587, auth: alice, from: alice.user, to: [alice.user], body: message(alice.user, alice.user, 'from mx2') });
    expect(s.stage, s.reply.text).toBe('done');
    const msgs = await eventually(() => imapFetchAll(ep, alice.user, alice.password), (m) => m.length >= 1);
    const state = readState(file);
    const resolver = async (name: string) => {
      const k = state.dkim[name];
      if (k) return [[`v=DKIM1; k=${k.algorithm}; p=${k.publicKey}`]];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    };
    const res = (await dkimVerify(Buffer.from(msgs[0]!), { resolver })) as { results: Array<{ signingDomain: string; selector: string; status: { result: string } }> };
    const sig = res.results.find((x) => x.signingDomain === 'example.test');
    expect(sig?.selector).toBe('mail-2');
    expect(sig?.status.result).toBe('pass');
    expect(JSON.parse((await cli(['plan', '--json', file], PASSWORDS)).stdout).changes).toBe(0);
  });

  it('selectors belong to the hosts: with the hosts in the other order, every DKIM key keeps its selector; only what serves clients moves with the first host', async () => {
    const before = readState(file).dkim;
    const text = readFileSync(file, 'utf8');
    const [head, rest] = text.split('hosts:\n');
    const [hostsPart, tail] = rest!.split('stack:');
    const blocks = hostsPart!.split(/(?=^  - name: )/m).filter((b) => b.trim());
    expect(blocks.length).toBe(2);
    writeFileSync(file, `${head}hosts:\n${blocks[1]}${blocks[0]}stack:${tail}`);
    // The client services (imap., smtp., the HTTPS endpoint) move to mx-b, the first host now: that
    // changes certificates and nginx, and nothing of DKIM. No key is made, renamed or retired.
    const p = JSON.parse((await cli(['plan', '--json', file], PASSWORDS)).stdout) as { hosts: Array<{ name: string; plan: Array<{ kind: string; name?: string; path?: string; unit?: string }> }> };
    for (const h of p.hosts) {
      const what = h.plan.map((c) => c.name ?? c.path ?? c.unit ?? c.kind);
      expect(what.filter((w) => /DKIM|dkim|opendkim/.test(w)), `${h.name}: ${what.join(', ')}`).toEqual([]);
    }
    const r = await cli(['apply', '--yes', '--json', file], PASSWORDS);
    expect(r.code, r.stderr).toBe(0);
    expect(readState(file).dkim).toEqual(before);
    expect(JSON.parse((await cli(['plan', '--json', file], PASSWORDS)).stdout).changes).toBe(0);
    const zone = await cli(['dns', file], PASSWORDS);
    expect(zone.stdout).toMatch(/^mail-2\._domainkey\s+IN TXT/m);
    expect(zone.stdout).toMatch(/^s1-rsa-2\._domainkey\s+IN TXT/m);
  });
});
