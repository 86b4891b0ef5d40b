/**
 * The mail world: a real authoritative DNS server (BIND 9), a strict receiving peer (Postfix with
 * OpenDKIM, OpenDMARC and policyd-spf) and VPS containers on one network, checked over the wire.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { run } from '../../src/testbed/docker.js';
import { reverseOf, startWorld, txtData } from '../../src/testbed/world.js';
import type { World } from '../../src/testbed/world.js';

const log = (l: string) => process.stderr.write(`[world] ${l}\n`);

/** dig on this machine against the world's DNS on 127.0.0.1. */
async function dig(w: World, ...args: string[]) {
  const r = await run('dig', ['-p', String(w.dns.port), '@127.0.0.1', '+time=2', '+tries=2', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/** A bash $'...' word for any text. */
const bashWord = (s: string) => `$'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\r/g, '\\r').replace(/\n/g, '\\n')}'`;

/**
 * A raw SMTP session from inside a container, as a bash script (/dev/tcp: the VPS image has no SMTP
 * client): sends each command, prints every line with S:/C:, stops at the first 4xx/5xx reply.
 */
function smtpSession(server: string, commands: string[]): string {
  return `exec 3<>/dev/tcp/${server}/25 || exit 1
reply() { while IFS= read -r -t 20 l <&3; do l=\${l%$'\\r'}; echo "S: $l"; case "$l" in [0-9][0-9][0-9]-*) ;; [45]*) return 1;; *) return 0;; esac; done; return 1; }
say() { printf '%s\\r\\n' "$1" >&3; echo "C: $1"; reply; }
reply || exit 0
${commands.map((c) => `say ${bashWord(c)} || exit 0`).join('\n')}
`;
}

describe('the mail world', () => {
  let w: World;
  beforeAll(async () => {
    const t0 = Date.now();
    w = await startWorld({
      images: { vps: inject('vpsImage'), dns: inject('dnsImage'), peer: inject('peerImage') },
      hosts: [
        { name: 'mx1', hostname: 'mail.example.test' },
        { name: 'mx2', hostname: 'mail2.example.test' },
      ],
      log,
    });
    log(`started in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // What mailops would publish for example.test: mx1 has a forward record and SPF, mx2 only its PTR.
    await w.addZone('example.test', { nameservers: ['ns1.example.test'] });
    const mx1 = w.vps.hosts[0]!;
    await w.setRecords('example.test', [
      `update add mail.example.test. 60 A ${mx1.ip}`,
      'update add example.test. 60 MX 10 mail.example.test.',
      `update add example.test. 60 TXT ${txtData(`v=spf1 ip4:${mx1.ip} -all`)}`,
    ]);
  });
  afterAll(async () => {
    if (!w) return;
    await w.stop();
    // Nothing is left: no container of the world, no network.
    const left = await run('docker', ['ps', '-aq', '--filter', `name=^${w.dns.container.replace(/--dns$/, '-')}`]);
    expect(left.stdout.trim()).toBe('');
    expect((await run('docker', ['network', 'inspect', w.network])).code).not.toBe(0);
  });

  it('puts every container on the world network alone, publishes on 127.0.0.1 only, resolves through its DNS', async () => {
    expect(w.subnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    expect(w.dns.port).toBeGreaterThan(0);
    for (const c of [w.dns.container, w.peer!.container, ...w.vps.hosts.map((h) => h.container)]) {
      // On the world's network only, ports on 127.0.0.1 only.
      const nets = await run('docker', ['inspect', '-f', '{{json .NetworkSettings.Networks}}', c]);
      expect(Object.keys(JSON.parse(nets.stdout) as object)).toEqual([w.network]);
      const bindings = await run('docker', ['inspect', '-f', '{{json .HostConfig.PortBindings}}', c]);
      for (const list of Object.values((JSON.parse(bindings.stdout) ?? {}) as Record<string, Array<{ HostIp: string }>>)) for (const b of list) expect(b.HostIp).toBe('127.0.0.1');
    }
    // Every container resolves through the world's DNS alone.
    for (const c of [w.peer!.container, ...w.vps.hosts.map((h) => h.container)]) {
      expect((await w.exec(c, 'cat /etc/resolv.conf')).stdout).toBe(`nameserver ${w.dns.ip}\n`);
    }
  });

  it('serves the peer.test zone over UDP and TCP on 127.0.0.1', async () => {
    const peer = w.peer!;
    expect((await dig(w, '+short', 'peer.test', 'MX')).trim()).toBe('10 mx.peer.test.');
    expect((await dig(w, '+short', '+tcp', 'mx.peer.test', 'A')).trim()).toBe(peer.ip);
    expect(await dig(w, '+short', 'peer.test', 'TXT')).toContain(`"v=spf1 ip4:${peer.ip} -all"`);
    expect(await dig(w, '+short', '_dmarc.peer.test', 'TXT')).toContain('"v=DMARC1; p=reject"');
    const dkim = (await dig(w, '+short', 'peer._domainkey.peer.test', 'TXT')).replace(/" "/g, '');
    expect(dkim).toMatch(/^"v=DKIM1; k=rsa; p=MIIB[A-Za-z0-9+/=]{300,}"$/m);
    const answer = await dig(w, 'peer.test', 'SOA');
    expect(answer).toMatch(/flags: qr aa/);
    expect((await dig(w, '+short', '-x', w.dns.ip)).trim()).toBe('ns.mailops.test.');
    expect((await dig(w, '+short', 'ns.mailops.test')).trim()).toBe(w.dns.ip);
  });

  it('transfers zones (AXFR) only with the TSIG key', async () => {
    const signed = await dig(w, '-k', w.dns.keyFile, 'peer.test', 'AXFR');
    expect(signed).toMatch(/^peer\._domainkey\.peer\.test\.\s+\d+\s+IN\s+TXT/m);
    expect(signed).toMatch(/^mx\.peer\.test\.\s+\d+\s+IN\s+A\s/m);
    const unsigned = await run('dig', ['-p', String(w.dns.port), '@127.0.0.1', '+time=2', '+tries=1', 'peer.test', 'AXFR']);
    expect(unsigned.stdout).toContain('Transfer failed.');
    expect(unsigned.stdout).not.toMatch(/IN\s+TXT/);
    const key = (await run('stat', ['-c', '%a', w.dns.keyFile])).stdout.trim();
    expect(key).toBe('600');
  });

  it('accepts RFC 2136 updates signed with the key and refuses unsigned ones', async () => {
    const script = (name: string) => `server 127.0.0.1 ${w.dns.port}\nzone peer.test\nupdate add ${name}.peer.test. 60 TXT "hello"\nsend\n`;
    const signed = await run('nsupdate', ['-k', w.dns.keyFile], { input: script('signed') });
    expect(signed.code, signed.stderr).toBe(0);
    expect((await dig(w, '+short', 'signed.peer.test', 'TXT')).trim()).toBe('"hello"');
    const unsigned = await run('nsupdate', [], { input: script('unsigned') });
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stderr).toContain('update failed: REFUSED');
    expect((await dig(w, '+short', 'unsigned.peer.test', 'TXT')).trim()).toBe('');
    // A key of the right name but another secret is refused too.
    const bad = await run('nsupdate', ['-y', `hmac-sha256:mailops-tsig:${randomBytes(32).toString('base64')}`], { input: script('forged') });
    expect(bad.code).not.toBe(0);
    expect((await dig(w, '+short', 'forged.peer.test', 'TXT')).trim()).toBe('');
    // addZone is idempotent, and its zones take signed updates too.
    await w.addZone('example.test');
    await w.setRecords('example.test', ['update add probe.example.test. 60 A 192.0.2.7']);
    expect(await w.resolve('probe.example.test')).toEqual(['192.0.2.7']);
    expect((await dig(w, '+short', 'example.test', 'NS')).trim()).toBe('ns1.example.test.');
    expect((await dig(w, '+short', 'ns1.example.test', 'A')).trim()).toBe(w.dns.ip);
  });

  it('gives every VPS the PTR of its mail host name, confirmed forward, inside the VPS', async () => {
    const [mx1, mx2] = w.vps.hosts as [(typeof w.vps.hosts)[0], (typeof w.vps.hosts)[0]];
    expect(reverseOf(mx1.ip).name).toBe(`${mx1.ip.split('.').reverse().join('.')}.in-addr.arpa`);
    // dig from the apt cache of the VPS image (no network needed).
    const dnsutils = await w.vps.exec(mx1, 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download bind9-dnsutils >/dev/null 2>&1 && command -v dig');
    expect(dnsutils.code, dnsutils.stderr).toBe(0);
    const ptr = await w.vps.exec(mx1, `dig +short -x ${mx1.ip}`);
    expect(ptr.stdout.trim()).toBe('mail.example.test.');
    expect((await w.vps.exec(mx1, 'dig +short mail.example.test A')).stdout.trim()).toBe(mx1.ip);
    // mx2 has a PTR but no forward record: what the peer refuses below.
    expect((await w.vps.exec(mx1, `dig +short -x ${mx2.ip}`)).stdout.trim()).toBe('mail2.example.test.');
    expect((await w.vps.exec(mx1, 'dig +short mail2.example.test A')).stdout.trim()).toBe('');
    // Docker's resolver never answers for container addresses: an address without PTR has none.
    const gateway = w.subnet.replace(/\d+\/\d+$/, '1');
    expect((await w.vps.exec(mx1, `dig -x ${gateway} | grep -c 'status: NXDOMAIN'`)).stdout.trim()).toBe('1');
  });

  it('lets a VPS that resolves only through the world reach the Debian mirror (apt-get update)', async () => {
    const r = await w.vps.exec(w.vps.hosts[1]!, 'apt-get update -q 2>&1; echo rc=$?');
    expect(r.stdout, r.stdout.slice(-2000)).toMatch(/rc=0\s*$/);
    expect(r.stdout).toMatch(/(Hit|Get):\d+ http:\/\/deb\.debian\.org/);
    expect(r.stdout).not.toMatch(/^(W|E): /m);
  });

  it('refuses, with a 5xx at RCPT TO, a client without forward-confirmed reverse DNS', async () => {
    const mx2 = w.vps.hosts[1]!;
    const t = await w.vps.exec(mx2, 'bash -s', smtpSession(w.peer!.ip, ['EHLO mail2.example.test', 'MAIL FROM:<alice@example.test>', 'RCPT TO:<someone@peer.test>', 'QUIT']));
    expect(t.stdout).toMatch(/^S: 220 mx\.peer\.test ESMTP/m);
    expect(t.stdout).toMatch(/^S: 250 2\.1\.0 Ok/m); // MAIL FROM is accepted (reject delayed to RCPT, as Postfix does)
    expect(t.stdout).toMatch(new RegExp(`^C: RCPT TO:<someone@peer\\.test>\\nS: 550 5\\.7\\.25 Client host rejected: cannot find your hostname, \\[${mx2.ip.replace(/\./g, '\\.')}\\]`, 'm'));
    expect(t.stdout).not.toMatch(/^C: QUIT/m);
    expect(w.peer!.log()).toMatch(new RegExp(`NOQUEUE: reject: RCPT from unknown\\[${mx2.ip.replace(/\./g, '\\.')}\\]: 550 5\\.7\\.25`));
  });

  it('judges SPF: a sender whose domain does not authorise the client is refused (5.7.23)', async () => {
    const mx1 = w.vps.hosts[0]!;
    const t = await w.vps.exec(mx1, 'bash -s', smtpSession(w.peer!.ip, ['EHLO mail.example.test', 'MAIL FROM:<forger@peer.test>', 'RCPT TO:<someone@peer.test>', 'QUIT']));
    expect(t.stdout).toMatch(/^S: 550 5\.7\.23 .*SPF/m);
  });

  it('judges HELO: a name that is not fully qualified or does not resolve is refused (5xx)', async () => {
    const mx1 = w.vps.hosts[0]!;
    const session = (helo: string) => w.vps.exec(mx1, 'bash -s', smtpSession(w.peer!.ip, [`EHLO ${helo}`, 'MAIL FROM:<alice@example.test>', 'RCPT TO:<someone@peer.test>', 'QUIT']));
    expect((await session('mailhost')).stdout).toMatch(/^S: 504 5\.5\.2 <mailhost>: Helo command rejected: need fully-qualified hostname/m);
    expect((await session('nowhere.example.test')).stdout).toMatch(/^S: 550 5\.7\.1 <nowhere\.example\.test>: Helo command rejected: Host not found/m);
    expect((await session('bad_name!.example.test')).stdout).toMatch(/^S: 501 5\.5\.2 <bad_name!\.example\.test>: Helo command rejected: Invalid name/m);
  });

  it('judges DMARC: mail whose From domain (p=reject) is neither DKIM- nor SPF-aligned is refused after DATA', async () => {
    const mx1 = w.vps.hosts[0]!;
    const t = await w.vps.exec(
      mx1,
      'bash -s',
      smtpSession(w.peer!.ip, [
        'EHLO mail.example.test',
        'MAIL FROM:<alice@example.test>',
        'RCPT TO:<someone@peer.test>',
        'DATA',
        ['From: <postmaster@peer.test>', 'To: someone@peer.test', 'Subject: spoofed', `Date: ${new Date().toUTCString()}`, `Message-ID: <spoof-${Date.now()}@example.test>`, '', 'Not really from peer.test.', '.'].join('\r\n'),
        'QUIT',
      ]),
    );
    expect(t.stdout).toMatch(/^S: 354 /m);
    expect(t.stdout).toMatch(/^S: 550 5\.7\.1 rejected by DMARC policy for peer\.test/m);
    // opendmarc logs its verdict through syslog, which may write it a moment after the SMTP reply.
    for (const end = Date.now() + 5000; Date.now() < end && !/opendmarc\[\d+\]: \w+: peer\.test fail/.test(w.peer!.log()); ) await new Promise((r) => setTimeout(r, 100));
    expect(w.peer!.log()).toMatch(/opendmarc\[\d+\]: \w+: peer\.test fail/);
  });

  it('accepts mail from a client with FCrDNS and SPF, and records the verdicts', async () => {
    const mx1 = w.vps.hosts[0]!;
    const id = `fcrdns-${Date.now()}@example.test`;
    const t = await w.vps.exec(
      mx1,
      'bash -s',
      smtpSession(w.peer!.ip, [
        'EHLO mail.example.test',
        'MAIL FROM:<alice@example.test>',
        'RCPT TO:<someone@peer.test>',
        'DATA',
        ['From: Alice <alice@example.test>', 'To: someone@peer.test', 'Subject: plain', `Date: ${new Date().toUTCString()}`, `Message-ID: <${id}>`, '', 'Hello.', '.'].join('\r\n'),
        'QUIT',
      ]),
    );
    expect(t.stdout).toMatch(/^S: 250 2\.0\.0 Ok: queued as /m);
    const m = await w.peer!.waitFor(id);
    expect(m).toMatch(new RegExp(`^Received: from mail\\.example\\.test \\(mail\\.example\\.test \\[${mx1.ip.replace(/\./g, '\\.')}\\]\\)`, 'm'));
    expect(m).toMatch(/^Authentication-Results: mx\.peer\.test; spf=pass .*smtp\.mailfrom=example\.test/m);
    expect(m).toMatch(/^Authentication-Results: mx\.peer\.test;\s+dkim=none/m);
    expect(m).toMatch(/^Authentication-Results: mx\.peer\.test; dmarc=none/m);
  });

  it('sends from the peer to a domain of the network: MX found in the world DNS, STARTTLS, DKIM-signed', async () => {
    const mx1 = w.vps.hosts[0]!;
    // A plain Postfix on mx1 (from the image's apt cache) receives for example.test.
    const install = await w.vps.exec(
      mx1,
      `export DEBIAN_FRONTEND=noninteractive
echo 'postfix postfix/main_mailer_type select Internet Site' | debconf-set-selections
echo 'postfix postfix/mailname string mail.example.test' | debconf-set-selections
apt-get install -y -q --no-download --no-install-recommends postfix >/tmp/apt.log 2>&1 || { tail -5 /tmp/apt.log; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=mail.example.test -keyout /etc/postfix/key.pem -out /etc/postfix/cert.pem 2>/dev/null
postconf -e 'myhostname = mail.example.test' 'mydestination = example.test, localhost' 'home_mailbox = Maildir/' 'smtpd_tls_security_level = may' 'smtpd_tls_cert_file = /etc/postfix/cert.pem' 'smtpd_tls_key_file = /etc/postfix/key.pem' 'smtpd_tls_received_header = yes'
id bob >/dev/null 2>&1 || useradd -m bob
systemctl restart postfix && systemctl is-active postfix`,
    );
    expect(install.code, install.stdout + install.stderr).toBe(0);
    const id = await w.peer!.send({ from: 'alice@peer.test', to: 'bob@example.test', subject: 'to a VPS' });
    let m = '';
    for (let i = 0; i < 80 && !m; i++) {
      m = (await w.vps.exec(mx1, `grep -l -F '<${id}>' /home/bob/Maildir/new/* 2>/dev/null | head -1 | xargs -r cat`)).stdout;
      if (!m) await new Promise((r) => setTimeout(r, 250));
    }
    expect(m, w.peer!.log().split('\n').slice(-10).join('\n')).toContain(`<${id}>`);
    expect(m).toMatch(new RegExp(`^Received: from mx\\.peer\\.test \\(mx\\.peer\\.test \\[${w.peer!.ip.replace(/\./g, '\\.')}\\]\\)\\n\\s+\\(using TLSv1\\.[23] `, 'm'));
    expect(m).toMatch(/^\s+by mail\.example\.test \(Postfix\) with ESMTPS/m);
    expect(m).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=peer\.test; s=peer;/m);
    expect(w.peer!.log()).toMatch(new RegExp(`to=<bob@example\\.test>, relay=mail\\.example\\.test\\[${mx1.ip.replace(/\./g, '\\.')}\\]:25, .*status=sent`));
  });

  it("delivers the peer's own signed mail through its judging port 25: dkim, spf and dmarc pass over TLS", async () => {
    const peer = w.peer!;
    const id = await peer.send({ from: 'postmaster@peer.test', to: 'someone@peer.test', subject: 'peer to itself', body: 'Round trip.' });
    const m = await peer.waitFor(`<${id}>`);
    const header = m.slice(0, m.indexOf('\n\n'));
    expect(header).toMatch(/^Authentication-Results: mx\.peer\.test;\s+dkim=pass \(2048-bit key[^)]*\) header\.d=peer\.test header\.i=@peer\.test header\.a=rsa-sha256 header\.s=peer/m);
    expect(header).toMatch(/^Authentication-Results: mx\.peer\.test; spf=pass \(sender SPF authorized\) smtp\.mailfrom=peer\.test/m);
    expect(header).toMatch(/^Authentication-Results: mx\.peer\.test; dmarc=pass \(p=reject dis=none\) header\.from=peer\.test/m);
    expect(header).toMatch(new RegExp(`^Received: from mx\\.peer\\.test \\(mx\\.peer\\.test \\[${peer.ip.replace(/\./g, '\\.')}\\]\\)\\n\\s+\\(using TLSv1\\.[23] with cipher`, 'm'));
    expect(header).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=peer\.test; s=peer;/m);
    expect(m).toContain('Round trip.');
    expect((await peer.inbox()).length).toBeGreaterThanOrEqual(2);
  });
});
