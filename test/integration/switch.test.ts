/** Switching a host from Postfix to Exim and back by editing the playbook: mail stays, the old MTA stops. */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVps } from '../../src/testbed/harness.js';
import type { VpsCluster, VpsHost } from '../../src/testbed/harness.js';
import { PASSWORDS, cli, scenarioPlaybook, writePlaybook } from './support/env.js';
import { eventually, imapFetchAll, message, smtp } from './support/mail.js';
import type { Ep } from './support/mail.js';

const alice = { user: 'alice@example.test', password: PASSWORDS.IT_ALICE_PASSWORD };

describe('switching MTA', () => {
  let cluster: VpsCluster;
  let vps: VpsHost;
  let file: string;
  let ep: Ep;
  const setMta = (mta: string) => writeFileSync(file, readFileSync(file, 'utf8').replace(/^ {2}mta: \w+$/m, `  mta: ${mta}`));
  const send = (subject: string) => smtp(ep, { port: 587, auth: alice, from: alice.user, to: [alice.user], body: message(alice.user, alice.user, subject) });

  beforeAll(async () => {
    cluster = await startVps({ image: inject('stackImage'), count: 1 });
    vps = cluster.hosts[0]!;
    file = writePlaybook(scenarioPlaybook(cluster, vps, 'postfix'));
    ep = { host: '127.0.0.1', port: (p) => vps.ports[p]! };
  });
  afterAll(async () => cluster?.stop());

  it('postfix → exim → postfix keeps the mailboxes and stops the old MTA', async () => {
    expect((await cli(['apply', '--yes', file], PASSWORDS)).code).toBe(0);
    expect((await send('on postfix')).stage).toBe('done');
    await eventually(() => imapFetchAll(ep, alice.user, alice.password), (m) => m.length >= 1);

    // A message stuck in the Postfix queue makes plan warn before the switch.
    // A message waiting in Postfix's queue (Postfix stopped, so it stays there) makes plan warn.
    const held = await cluster.exec(vps, 'systemctl stop postfix && printf "Subject: held\\n\\nx\\n" | sendmail -f alice@example.test someone@nowhere.example && find /var/spool/postfix/maildrop -type f | wc -l');
    expect(held.stdout.trim()).toBe('1');
    setMta('exim');
    const plan = await cli(['plan', file], PASSWORDS);
    expect(plan.stdout).toMatch(/stop-disable/);
    expect(plan.stdout).toMatch(/messages? wait in the postfix queue/);
    // Postfix runs when the switch comes (Debian's postfix@-.service under postfix.service): installing
    // Exim removes the postfix package, and Postfix must not keep port 25 from Exim.
    await cluster.exec(vps, 'systemctl start postfix');
    expect((await cluster.exec(vps, "systemctl is-active 'postfix@-.service'")).stdout.trim()).toBe('active');

    const toExim = await cli(['apply', '--yes', file], PASSWORDS);
    expect(toExim.code, toExim.stdout + toExim.stderr).toBe(0);
    expect((await cluster.exec(vps, 'systemctl is-active exim4')).stdout.trim()).toBe('active');
    expect((await cluster.exec(vps, 'systemctl is-active postfix; systemctl is-enabled postfix')).stdout).not.toMatch(/^active$/m);
    expect((await cluster.exec(vps, "systemctl is-active 'postfix@-.service'")).stdout.trim()).not.toBe('active');
    // No Postfix process is left to hold port 25: the one listening is Exim's.
    expect((await cluster.exec(vps, "ps -eo args | grep -c '^/usr/lib/postfix/sbin/master' || true")).stdout.trim()).toBe('0');
    // Postfix's helpers go with it (Exim does SRS by itself).
    expect((await cluster.exec(vps, 'systemctl is-active postsrsd; systemctl is-enabled postsrsd')).stdout).toBe('inactive\ndisabled\n');
    // So does OpenDKIM (Exim signs by itself): stopped and disabled, mailops' tables gone, its directory kept.
    expect((await cluster.exec(vps, 'systemctl is-active opendkim; systemctl is-enabled opendkim')).stdout).toBe('inactive\ndisabled\n');
    expect((await cluster.exec(vps, 'ls -A /etc/opendkim; echo end')).stdout).toBe('end\n');
    // The DKIM key made under Postfix (group opendkim) is Exim's now: it signs with it.
    expect((await cluster.exec(vps, 'stat -c %G /etc/dkimkeys/*.key')).stdout).toBe('Debian-exim\n');
    expect((await send('on exim')).stage).toBe('done');
    const onExim = await eventually(() => imapFetchAll(ep, alice.user, alice.password), (m) => m.some((x) => /^Subject: on exim/m.test(x)));
    expect(onExim.map((m) => /^Subject: (.*)$/m.exec(m)?.[1]?.trim())).toEqual(expect.arrayContaining(['on postfix', 'on exim']));
    expect(JSON.parse((await cli(['plan', '--json', file], PASSWORDS)).stdout).changes).toBe(0);

    setMta('postfix');
    const back = await cli(['apply', '--yes', file], PASSWORDS);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect((await cluster.exec(vps, 'systemctl is-active postfix postsrsd opendkim; systemctl is-enabled opendkim')).stdout).toBe('active\nactive\nactive\nenabled\n');
    expect((await cluster.exec(vps, 'systemctl is-active exim4')).stdout.trim()).not.toBe('active');
    // And OpenDKIM's again: a key it cannot read makes it tempfail every message it should sign.
    expect((await cluster.exec(vps, 'stat -c %G /etc/dkimkeys/*.key')).stdout).toBe('opendkim\n');
    expect((await send('back on postfix')).stage).toBe('done');
    const all = await eventually(() => imapFetchAll(ep, alice.user, alice.password), (m) => m.some((x) => /^Subject: back on postfix/m.test(x)));
    expect(all.map((m) => /^Subject: (.*)$/m.exec(m)?.[1]?.trim())).toEqual(expect.arrayContaining(['on postfix', 'on exim', 'back on postfix']));
    // OpenDKIM signs again.
    expect(all.find((x) => /^Subject: back on postfix/m.test(x))).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=example\.test; s=mail;/m);
    expect(JSON.parse((await cli(['plan', '--json', file], PASSWORDS)).stdout).changes).toBe(0);
  });
});
