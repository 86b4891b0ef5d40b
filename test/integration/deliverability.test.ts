/**
 * The mail world: a real authoritative DNS server (BIND) and a strict receiving peer (Postfix, OpenDKIM,
 * OpenDMARC, policyd-spf) on the test network. For Postfix and for Exim, with an RSA key and an Ed25519
 * key (dual-signed with RSA): apply pushes the zones with TSIG-signed RFC 2136 updates after the host
 * converges, a second apply changes nothing anywhere, verify --resolver passes every check with none
 * skipped (the HTTPS endpoint and its MTA-STS policy against DNS included; an edited served file fails with
 * what differs), and the peer judges our mail dkim=pass spf=pass dmarc=pass, HELO = PTR = host name, over TLS.
 */
import { createHash, randomBytes } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PEER_HOSTNAME, startWorld } from '../../src/testbed/world.js';
import type { World } from '../../src/testbed/world.js';
import type { VpsHost } from '../../src/testbed/harness.js';
import { judge, verdictOf } from '../../src/verify/verdict.js';
import { cli, hostYaml, writePlaybook } from './support/env.js';
import { loadSite } from '../../src/site/load.js';
import { readState } from '../../src/state/state.js';
import { verifySite } from '../../src/verify/site.js';
import { resolverFor } from '../../src/verify/dns.js';
import { eventually, imapFetchAll, message, smtp } from './support/mail.js';
import type { Ep } from './support/mail.js';

const PW = { IT_ALICE_PASSWORD: 'alice-Secret-1', IT_ORDERS_PASSWORD: 'orders-Secret-3' };

let world: World;

beforeAll(async () => {
  world = await startWorld({
    images: { vps: inject('vpsImage'), dns: inject('dnsImage'), peer: inject('peerImage'), client: inject('clientImage') },
    hosts: [
      { name: 'pf', hostname: 'mail.pf.test', image: inject('stackImage') },
      { name: 'ex', hostname: 'mail.ex.test', image: inject('stackEximImage') },
    ],
    // A person's machine: the Debian mail clients msmtp and fetchmail, set up from what autoconfig says.
    clients: [{ name: 'mua', hostname: 'mua.outside.test' }],
  });
});
afterAll(async () => world?.stop());

function playbook(mta: 'postfix' | 'exim', h: VpsHost, dom: string, extraDomains = '', dkim: { key?: string; grace?: string; update?: boolean } = {}): string {
  const update = dkim.update === false ? '' : `  update:\n    server: 127.0.0.1:${world.dns.port}\n    key: { file: ${world.dns.keyFile} }\n`;
  return `site: deliver-${h.name}
hosts:
${hostYaml(world.vps, h, { hostname: `mail.${dom}`, ipv4: h.ip })}
stack:
  mta: ${mta}
  imap: true
  pop3: false
  tls: { mode: self-signed }
dns:
  ttl: 300
  nameservers:
    - { name: ns1.${dom}, ipv4: ${world.dns.ip} }
${update}  tlsrpt: postmaster@${dom}
domains:
  - name: ${dom}
    dkim: { selector: mail, key: ${dkim.key ?? 'rsa-2048'}${dkim.grace ? `, grace: ${dkim.grace}` : ''} }
    dmarc: { policy: reject, rua: postmaster@${dom} }
    mailboxes:
      - name: alice
        password: { env: IT_ALICE_PASSWORD }
    aliases:
      postmaster: alice
  - name: ed.${dom}
    dkim: { selector: s1, key: ed25519 }
    dmarc: { policy: reject }
    mailboxes:
      - name: orders
        password: { env: IT_ORDERS_PASSWORD }
    aliases:
      postmaster: alice@${dom}
${extraDomains}`;
}

interface ApplyJson {
  changes: number;
  hosts: Array<{ ok: boolean; changes: number; error?: string }>;
  dns?: { changes: number; ok: boolean; zones: Array<{ zone: string; changes: number; ok: boolean; error?: string }> };
}

for (const [mta, name] of [
  ['postfix', 'pf'],
  ['exim', 'ex'],
] as const) {
  describe(`the mail world with ${mta}`, () => {
    const dom = `${name}.test`;
    const hostname = `mail.${dom}`;
    let host: VpsHost;
    let file: string;
    let ep: Ep;
    const apply = (...extra: string[]) => cli(['apply', '--yes', '--json', ...extra, file], PW);
    /** Where verify connects: 127.0.0.1 and the container's published ports. */
    const endpoint = () => ({ address: '127.0.0.1', port: (p: number) => host.ports[p]! });
    const verify = () => {
      Object.assign(process.env, PW);
      const { site } = loadSite(file, { secrets: 'error' });
      const server = `127.0.0.1:${world.dns.port}`;
      return verifySite(site, readState(file), site.hosts, endpoint, { resolver: resolverFor(server), resolverName: server });
    };

    beforeAll(async () => {
      host = world.vps.hosts.find((h) => h.name === name)!;
      file = writePlaybook(playbook(mta, host, dom));
      ep = { host: '127.0.0.1', port: (p) => host.ports[p]! };
      for (const z of [dom, `ed.${dom}`]) await world.addZone(z, { nameservers: [`ns1.${dom}`] });
      // Records of the zone that mailops does not render: they must stay.
      await world.setRecords(dom, [`update add www.${dom}. 300 A 192.0.2.80`, `update add ${dom}. 300 TXT "google-site-verification=abc123"`]);
    });

    it('apply converges the host, then pushes the zones (TSIG-signed RFC 2136): keys made in this run are published, foreign records stay', async () => {
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as ApplyJson;
      expect(out.hosts[0]!.ok).toBe(true);
      expect(out.dns?.ok).toBe(true);
      expect(out.dns!.changes).toBeGreaterThan(10);
      expect(out.changes).toBe(out.hosts[0]!.changes + out.dns!.changes);
      expect(await world.resolve(dom, 'MX')).toEqual([`10 ${hostname}.`]);
      expect(await world.resolve(hostname, 'A')).toEqual([host.ip]);
      const rsa = (await world.resolve(`mail._domainkey.${dom}`, 'TXT')).join('');
      expect(rsa).toMatch(/^"v=DKIM1; k=rsa; p=MII/);
      const ed = (await world.resolve(`s1._domainkey.ed.${dom}`, 'TXT')).join('');
      expect(ed).toMatch(/^"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="$/);
      expect((await world.resolve(`s1-rsa._domainkey.ed.${dom}`, 'TXT')).join('')).toMatch(/k=rsa; p=MII/);
      expect(await world.resolve(`_smtp._tls.${dom}`, 'TXT')).toEqual([`"v=TLSRPTv1; rua=mailto:postmaster@${dom}"`]);
      expect(await world.resolve(`www.${dom}`, 'A')).toEqual(['192.0.2.80']);
      expect((await world.resolve(dom, 'TXT')).sort()).toEqual([`"google-site-verification=abc123"`, `"v=spf1 ip4:${host.ip} -all"`]);
    });

    it('a second apply changes nothing on the host or in DNS; plan agrees', async () => {
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as ApplyJson;
      expect(out.changes).toBe(0);
      expect(out.dns).toMatchObject({ changes: 0, ok: true });
      const p = await cli(['plan', '--detailed-exitcode', file], PW);
      expect(p.code, p.stdout + p.stderr).toBe(0);
      expect(p.stdout).toContain(`dns ${dom} (127.0.0.1:${world.dns.port}): up to date, nothing to do`);
    });

    it('verify with the world\'s DNS as resolver: every check passes and none is skipped (MX, SPF, DMARC, DKIM, TLS-RPT, names, SRV, A, PTR, the HTTPS endpoint, MTA-STS)', async () => {
      const checks = await verify();
      const bad = checks.filter((c) => c.status !== 'ok');
      expect(bad, JSON.stringify(bad, null, 1)).toEqual([]);
      const names = checks.map((c) => c.name);
      for (const n of [`MX of ${dom}`, `SPF of ${dom}`, `DMARC of ed.${dom}`, `DKIM mail._domainkey.${dom}`, `DKIM s1._domainkey.ed.${dom}`, `DKIM s1-rsa._domainkey.ed.${dom}`, `TLS-RPT of ${dom}`, `CNAME of imap.${dom}`, `SRV of _submission._tcp.${dom}`, `A of ${hostname}`, `PTR of ${host.ip}`, 'authenticated submission (587)']) {
        expect(names).toContain(n);
      }
      expect(checks.find((c) => c.name === `PTR of ${host.ip}`)!.detail).toBe(`${host.ip} → ${hostname} → ${host.ip} (forward-confirmed)`);
      expect(checks.find((c) => c.name === 'STARTTLS on 587')!.detail).toMatch(/the host's own self-signed certificate/);
      // The HTTPS endpoint, over TLS with each name as SNI and Host, against the playbook's model.
      const ofDom = new RegExp(`(autoconfig|autodiscover|mta-sts)\\.${name}\\.test\\b`);
      const https = checks.filter((c) => c.name.startsWith('HTTPS ') && !c.name.startsWith('HTTPS answers') && ofDom.test(c.name));
      expect(https.map((c) => c.name)).toEqual([
        `HTTPS certificate: autoconfig.${dom}`,
        `HTTPS certificate: autodiscover.${dom}`,
        `HTTPS certificate: mta-sts.${dom}`,
        `HTTPS Thunderbird autoconfig: https://autoconfig.${dom}/mail/config-v1.1.xml`,
        `HTTPS Thunderbird autoconfig: https://autoconfig.${dom}/.well-known/autoconfig/mail/config-v1.1.xml`,
        `HTTPS Outlook autodiscover (POX): https://autodiscover.${dom}/autodiscover/autodiscover.xml`,
        `HTTPS Outlook autodiscover (JSON): https://autodiscover.${dom}/autodiscover/autodiscover.json`,
        `HTTPS Apple profile: https://autoconfig.${dom}/apple/alice.mobileconfig`,
        `HTTPS MTA-STS policy: https://mta-sts.${dom}/.well-known/mta-sts.txt`,
      ]);
      expect(checks.find((c) => c.name === `HTTPS certificate: autoconfig.${dom}`)!.detail).toMatch(new RegExp(`^TLSv1\\.[23], the host's own self-signed certificate for autoconfig\\.${name}\\.test \\(SHA-256 `));
      expect(checks.find((c) => c.name === `HTTPS Apple profile: https://autoconfig.${dom}/apple/alice.mobileconfig`)!.detail).toMatch(/^200 application\/x-apple-aspen-config, \d+ bytes, exactly the playbook's$/);
      expect(checks.find((c) => c.name === `HTTPS answers nothing else: ${dom}`)!.detail).toContain(`404 for https://autoconfig.${dom}/mailops-verify/no-such-path`);
      expect(checks.find((c) => c.name === `HTTPS answers nothing else: ${hostname}`)!.detail).toBe(`404 for https://${hostname}/mail/config-v1.1.xml`);
      expect(checks.find((c) => c.name === `MTA-STS policy lists the MX of ${dom}`)!.detail).toBe(`mx: ${hostname} = MX ${hostname}`);
      expect(checks.find((c) => c.name === `MTA-STS id of ed.${dom} is the policy's`)!.detail).toMatch(/^id=[0-9a-f]{20}, the digest of the policy served$/);
    });

    it('mail to the peer: dkim=pass (RSA; Ed25519 and RSA both), spf=pass, dmarc=pass, HELO = PTR = host name, over TLS', async () => {
      const senders = [
        { user: `alice@${dom}`, password: PW.IT_ALICE_PASSWORD, domain: dom, algs: ['rsa-sha256'] },
        { user: `orders@ed.${dom}`, password: PW.IT_ORDERS_PASSWORD, domain: `ed.${dom}`, algs: ['ed25519-sha256', 'rsa-sha256'] },
      ];
      for (const s of senders) {
        const subject = `deliverability ${s.user} ${Date.now()}`;
        const sent = await smtp(ep, { port: 587, auth: s, from: s.user, to: ['someone@peer.test'], body: message(s.user, 'someone@peer.test', subject) });
        expect(sent.stage, sent.reply.text).toBe('done');
        const raw = await world.peer!.waitFor(subject, 60_000);
        const v = verdictOf(raw, PEER_HOSTNAME);
        const { problems, summary } = judge(v, s.domain, hostname);
        expect(problems, `${summary}\n${raw.split(/\r?\n\r?\n/)[0]}`).toEqual([]);
        const dkim = v.results.filter((x) => x.method === 'dkim' && x.props['header.d'] === s.domain);
        expect(dkim.map((x) => `${x.result} ${x.props['header.a']}`).sort()).toEqual(s.algs.map((a) => `pass ${a}`).sort());
        expect(raw).toMatch(new RegExp(`^Authentication-Results: ${PEER_HOSTNAME.replace(/\./g, '\\.')};[^\\n]*\\n?[^\\n]*dmarc=pass`, 'm'));
        expect(v.received).toMatchObject({ helo: hostname, verifiedName: hostname, ip: host.ip });
        expect(v.received!.tls).toMatch(/^TLSv1\.[23]$/);
      }
    });

    it("the peer's mail reaches a mailbox; mail to root and postmaster of the host itself reaches the site's postmaster", async () => {
      const subject = `from the peer ${Date.now()}`;
      await world.peer!.send({ from: 'someone@peer.test', to: `alice@${dom}`, subject });
      const cron = `cron of ${name} ${Date.now()}`;
      for (const to of ['root', 'postmaster']) {
        const r = await world.vps.exec(host, `printf 'Subject: %s to %s\\n\\nfrom the host itself\\n' '${cron}' '${to}' | /usr/sbin/sendmail ${to}`);
        expect(r.code, r.stderr).toBe(0);
      }
      const box = await eventually(
        () => imapFetchAll(ep, `alice@${dom}`, PW.IT_ALICE_PASSWORD),
        (m) => m.some((x) => x.includes(subject)) && m.filter((x) => x.includes(cron)).length >= 2,
        60,
      );
      expect(box.some((x) => x.includes(subject))).toBe(true);
      expect(box.filter((x) => x.includes(cron)).length).toBe(2);
      if (mta === 'exim') expect((await world.vps.exec(host, 'exim -bpc')).stdout.trim()).toBe('0');
      else expect((await world.vps.exec(host, 'postqueue -j | wc -l')).stdout.trim()).toBe('0');
    });

    it('HTTPS for mail clients, by name through the world DNS with the host certificate verified: autoconfig, autodiscover (POX and JSON), the Apple profile, the MTA-STS policy; nothing else answers', async () => {
      const ca = (await world.vps.exec(host, `cat /etc/mailops/tls/${hostname}.crt`)).stdout;
      const peer = world.peer!.container;
      expect((await world.exec(peer, 'cat > /tmp/host-ca.pem', ca)).code).toBe(0);
      /** One HTTPS request from the peer: the status line, the Content-Type and the body. */
      const https = async (name: string, path: string, body?: string) => {
        const req = `${body ? 'POST' : 'GET'} ${path} HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n${body ? `Content-Type: text/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body ?? ''}`;
        const r = await world.exec(peer, `openssl s_client -quiet -connect ${name}:443 -servername ${name} -verify_return_error -verify_hostname ${name} -CAfile /tmp/host-ca.pem 2>/dev/null`, req);
        const [head, ...rest] = r.stdout.split('\r\n\r\n');
        const lines = (head ?? '').split('\r\n');
        const status = lines.find((l) => l.startsWith('HTTP/')) ?? r.stdout.slice(0, 300);
        return { status, type: lines.find((l) => /^content-type:/i.test(l))?.replace(/^content-type:\s*/i, ''), body: rest.join('\r\n\r\n') };
      };
      const tb = await https(`autoconfig.${dom}`, '/mail/config-v1.1.xml');
      expect(tb.status).toBe('HTTP/1.1 200 OK');
      expect(tb.type).toBe('application/xml; charset=utf-8');
      expect(tb.body).toContain(`<incomingServer type="imap">\n      <hostname>imap.${dom}</hostname>\n      <port>993</port>\n      <socketType>SSL</socketType>\n      <username>%EMAILADDRESS%</username>`);
      expect(tb.body).toContain(`<outgoingServer type="smtp">\n      <hostname>smtp.${dom}</hostname>\n      <port>465</port>\n      <socketType>SSL</socketType>`);
      expect(tb.body).not.toContain('type="pop3"');
      expect((await https(`autoconfig.${dom}`, '/.well-known/autoconfig/mail/config-v1.1.xml')).body).toBe(tb.body);
      const pox = await https(`autodiscover.${dom}`, '/Autodiscover/Autodiscover.xml', `<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@${dom}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`);
      expect(pox.status).toBe('HTTP/1.1 200 OK');
      expect(pox.type).toBe('application/xml; charset=utf-8');
      expect(pox.body).toContain(`<Protocol><Type>IMAP</Type><Server>imap.${dom}</Server><Port>993</Port><DomainRequired>off</DomainRequired><SPA>off</SPA><SSL>on</SSL><AuthRequired>on</AuthRequired></Protocol>`);
      expect(pox.body).toContain(`<Protocol><Type>SMTP</Type><Server>smtp.${dom}</Server><Port>465</Port>`);
      const json = await https(`autodiscover.${dom}`, `/autodiscover/autodiscover.json/v1.0/alice@${dom}?Protocol=AutodiscoverV1`);
      expect(json.type).toBe('application/json; charset=utf-8');
      expect(JSON.parse(json.body)).toEqual({ Protocol: 'AutodiscoverV1', Url: `https://autodiscover.${dom}/autodiscover/autodiscover.xml` });
      const apple = await https(`autoconfig.${dom}`, '/apple/alice.mobileconfig');
      expect(apple.status).toBe('HTTP/1.1 200 OK');
      expect(apple.type).toBe('application/x-apple-aspen-config');
      expect(apple.body).toContain(`<key>IncomingMailServerHostName</key>\n        <string>imap.${dom}</string>`);
      expect(apple.body).toContain(`<key>EmailAddress</key>\n        <string>alice@${dom}</string>`);
      const sts = await https(`mta-sts.${dom}`, '/.well-known/mta-sts.txt');
      expect(sts.status).toBe('HTTP/1.1 200 OK');
      expect(sts.type).toBe('text/plain');
      expect(sts.body).toBe(`version: STSv1\r\nmode: testing\r\nmx: ${hostname}\r\nmax_age: 86400\r\n`);
      const id = createHash('sha256').update(sts.body).digest('hex').slice(0, 20);
      expect(await world.resolve(`_mta-sts.${dom}`, 'TXT')).toEqual([`"v=STSv1; id=${id}"`]);
      // Only those: another path, the policy under another name, a name the site does not serve.
      expect((await https(`autoconfig.${dom}`, '/etc/passwd')).status).toBe('HTTP/1.1 404 Not Found');
      expect((await https(`autoconfig.${dom}`, '/.well-known/mta-sts.txt')).status).toBe('HTTP/1.1 404 Not Found');
      expect((await https(hostname, '/mail/config-v1.1.xml')).status).toBe('HTTP/1.1 404 Not Found');
    });

    it('real mail clients set up only from what autoconfig says: msmtp sends as alice, fetchmail reads it back, both verifying the host certificate by name', async () => {
      const mua = world.clients[0]!.container;
      const ca = (await world.vps.exec(host, `cat /etc/mailops/tls/${hostname}.crt`)).stdout;
      expect((await world.exec(mua, 'cat > /tmp/host-ca.pem', ca)).code).toBe(0);
      // What Thunderbird would fetch for alice@dom, by name through the world's DNS, over verified HTTPS.
      const got = await world.exec(mua, `curl -sS --fail --cacert /tmp/host-ca.pem 'https://autoconfig.${dom}/mail/config-v1.1.xml?emailaddress=alice@${dom}'`);
      expect(got.code, got.stderr).toBe(0);
      const provider = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(got.stdout).clientConfig.emailProvider;
      const inbound = [provider.incomingServer].flat().find((s: Record<string, string>) => s['@type'] === 'imap');
      const outbound = [provider.outgoingServer].flat()[0];
      const user = (s: { username: string }) => s.username.replace('%EMAILADDRESS%', `alice@${dom}`);
      const token = randomBytes(6).toString('hex');
      // msmtp: the outgoing server, port and security exactly as given (SSL: TLS from the first byte; STARTTLS: upgrade).
      const msmtprc = [
        'account alice',
        `host ${outbound.hostname}`,
        `port ${outbound.port}`,
        'tls on',
        `tls_starttls ${outbound.socketType === 'STARTTLS' ? 'on' : 'off'}`,
        'tls_trust_file /tmp/host-ca.pem',
        'auth on',
        `user ${user(outbound)}`,
        `password ${PW.IT_ALICE_PASSWORD}`,
        `from alice@${dom}`,
        '',
      ].join('\n');
      expect((await world.exec(mua, 'cat > /tmp/msmtprc && chmod 600 /tmp/msmtprc', msmtprc)).code).toBe(0);
      const sent = await world.exec(mua, `msmtp -C /tmp/msmtprc -a alice alice@${dom}`, `From: alice@${dom}\nTo: alice@${dom}\nSubject: from msmtp ${token}\n\nSent by msmtp, set up from autoconfig.\n`);
      expect(sent.code, sent.stdout + sent.stderr).toBe(0);
      // fetchmail: the incoming server as given, the certificate checked; every message handed to a file.
      expect(inbound.socketType).toBe('SSL');
      const fetchmailrc = `poll ${inbound.hostname} protocol IMAP port ${inbound.port}\n  user "${user(inbound)}" password "${PW.IT_ALICE_PASSWORD}"\n  ssl sslcertck sslcertfile /tmp/host-ca.pem keep fetchall\n  mda "cat >> /tmp/fetched"\n`;
      expect((await world.exec(mua, 'cat > /tmp/fetchmailrc && chmod 600 /tmp/fetchmailrc && : > /tmp/fetched', fetchmailrc)).code).toBe(0);
      let fetched = '';
      for (let i = 0; i < 40 && !fetched.includes(token); i++) {
        const f = await world.exec(mua, 'fetchmail -f /tmp/fetchmailrc --nosyslog >/dev/null 2>/tmp/fetchmail.err; cat /tmp/fetched');
        fetched = f.stdout;
        if (!fetched.includes(token)) await new Promise((r) => setTimeout(r, 500));
      }
      expect(fetched, (await world.exec(mua, 'cat /tmp/fetchmail.err')).stdout).toContain(`Subject: from msmtp ${token}`);
    });

    if (mta === 'postfix') {
      it('verify checks what is really served: an edited autoconfig file and MTA-STS policy fail, saying what differs; apply puts them back', async () => {
        const edit = `sed -i 's#<port>993</port>#<port>143</port>#' /var/www/mailops/${dom}.config-v1.1.xml && sed -i 's#^mx: ${hostname}#mx: mx.elsewhere.test#' /var/www/mailops/${dom}.mta-sts.txt`;
        expect((await world.vps.exec(host, edit)).code).toBe(0);
        try {
          const checks = await verify();
          const bad = Object.fromEntries(checks.filter((c) => c.status !== 'ok').map((c) => [c.name, c.detail]));
          const fix = 'run mailops apply (it writes what the endpoint serves)';
          expect(bad).toEqual({
            [`HTTPS Thunderbird autoconfig: https://autoconfig.${dom}/mail/config-v1.1.xml`]: `line 9 differs: served "      <port>143</port>", the playbook gives "      <port>993</port>": ${fix}`,
            [`HTTPS Thunderbird autoconfig: https://autoconfig.${dom}/.well-known/autoconfig/mail/config-v1.1.xml`]: `line 9 differs: served "      <port>143</port>", the playbook gives "      <port>993</port>": ${fix}`,
            [`HTTPS MTA-STS policy: https://mta-sts.${dom}/.well-known/mta-sts.txt`]: `line 3 differs: served "mx: mx.elsewhere.test", the playbook gives "mx: ${hostname}": ${fix}`,
            [`MTA-STS policy lists the MX of ${dom}`]: `MX ${hostname} is not in the policy: senders that enforce MTA-STS will not deliver to it; the policy lists mx: mx.elsewhere.test, which is no MX of the domain (policy: mx.elsewhere.test; MX: ${hostname})`,
            [`MTA-STS id of ${dom} is the policy's`]: expect.stringMatching(new RegExp(`^_mta-sts\\.${name}\\.test says id=[0-9a-f]{20}, the policy served has id [0-9a-f]{20}: senders keep a stale policy until the id changes; the policy served is not the playbook's \\(see the check HTTPS MTA-STS policy\\): run mailops apply$`)),
          });
        } finally {
          // apply puts the files back (and the later steps start from a converged host).
          const r = await apply();
          expect(r.code, r.stderr).toBe(0);
          expect(JSON.parse(r.stdout).changes).toBeGreaterThanOrEqual(2);
        }
        const after = await verify();
        expect(after.filter((c) => c.status !== 'ok')).toEqual([]);
      });

      it('DNS failures: a wrong key, an unreachable server, a zone the server does not serve: a clear error naming server and zone, exit 1, the host stays converged', async () => {
        const bad = `${file}.bad.key`;
        writeFileSync(bad, readFileSync(world.dns.keyFile, 'utf8').replace(/secret "[^"]+"/, 'secret "QmFkU2VjcmV0QmFkU2VjcmV0QmFkU2VjcmV0QmFkU2U="'));
        const k = await apply('--tsig-key', bad);
        expect(k.code).toBe(1);
        expect(k.stderr).toContain(`TSIG key mailops-tsig was rejected by 127.0.0.1:${world.dns.port} for zone ${dom}`);
        expect(k.stderr + k.stdout).not.toContain('QmFkU2VjcmV0');
        expect((JSON.parse(k.stdout) as ApplyJson).hosts[0]).toMatchObject({ ok: true, changes: 0 });

        const u = await apply('--dns-server', '127.0.0.1:1');
        expect(u.code).toBe(1);
        expect(u.stderr).toContain(`DNS server 127.0.0.1:1 does not answer (zone ${dom})`);

        writeFileSync(file, playbook(mta, host, dom, `  - name: unserved.test\n    mailboxes:\n      - name: info\n        password: { env: IT_ALICE_PASSWORD }\n`));
        const n = await apply();
        expect(n.code).toBe(1);
        const out = JSON.parse(n.stdout) as ApplyJson;
        expect(out.hosts[0]!.ok).toBe(true);
        expect(out.dns!.zones.find((z) => z.zone === 'unserved.test')).toMatchObject({ ok: false, error: expect.stringContaining(`127.0.0.1:${world.dns.port} does not serve zone unserved.test`) });
        expect(out.dns!.zones.find((z) => z.zone === dom)).toMatchObject({ ok: true });
        // Back to the playbook of the other tests: converged again.
        writeFileSync(file, playbook(mta, host, dom));
        const back = await apply();
        expect(back.code, back.stderr).toBe(0);
      });
    }

    /** Mail from alice to the peer: the DKIM selectors that signed it and passed there. */
    async function signedWith(): Promise<string[]> {
      const subject = `dkim selector ${Date.now()}`;
      const sent = await smtp(ep, { port: 587, auth: { user: `alice@${dom}`, password: PW.IT_ALICE_PASSWORD }, from: `alice@${dom}`, to: ['someone@peer.test'], body: message(`alice@${dom}`, 'someone@peer.test', subject) });
      expect(sent.stage, sent.reply.text).toBe('done');
      const v = verdictOf(await world.peer!.waitFor(subject, 60_000), PEER_HOSTNAME);
      expect(judge(v, dom, hostname).problems).toEqual([]);
      return v.results.filter((x) => x.method === 'dkim' && x.props['header.d'] === dom).map((x) => `${x.result} ${x.props['header.s']}`);
    }
    const lifecycle = async () => (await world.vps.exec(host, 'cat /etc/dkimkeys/lifecycle')).stdout.split('\n').filter((l) => l.startsWith(`${dom} `)).map((l) => l.split(' ').slice(1, 5).join(' '));
    const txt = async (sel: string) => (await world.resolve(`${sel}._domainkey.${dom}`, 'TXT')).join('');
    const today = () => new Date().toISOString().slice(0, 10).replace(/-/g, '');

    it('DKIM key lifecycle: a new size makes a new key under a new selector, published and then signing in one apply (dns.update); the old key stays published for its grace, then goes', async () => {
      writeFileSync(file, playbook(mta, host, dom, '', { key: 'rsa-4096', grace: '1h' }));
      const next = `mail-${today()}`;
      const p = await cli(['plan', file], PW);
      expect(p.code, p.stderr).toBe(0);
      expect(p.stdout).toContain(`note: DKIM ${next}._domainkey.${dom}: new rsa-4096 key to replace mail._domainkey.${dom} (rsa-2048); it is published first and signs once DNS serves it (with dns.update, in this apply after the DNS push)`);
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`DKIM ${next}._domainkey.${dom}: DNS serves it, so it signs from now on; mail._domainkey.${dom} stops signing and stays published for 1 hour`);
      expect(await lifecycle()).toEqual([`${next} rsa 4096 signing`, 'mail rsa 2048 retired']);
      expect(await txt('mail')).toMatch(/^"v=DKIM1; k=rsa; p=MII/);
      // A 4096-bit key's p= is 736 characters of base64, in 255-character strings.
      expect((await txt(next)).replace(/" "/g, '')).toMatch(/^"v=DKIM1; k=rsa; p=MII[A-Za-z0-9+/]{731}==?"$/);
      expect(await signedWith()).toEqual([`pass ${next}`]);
      Object.assign(process.env, PW);
      const { site } = loadSite(file, { secrets: 'error' });
      const server = `127.0.0.1:${world.dns.port}`;
      const checks = await verifySite(site, readState(file), site.hosts, endpoint, { resolver: resolverFor(server), resolverName: server });
      expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
      expect(checks.filter((c) => c.name.startsWith('DKIM ') && c.name.endsWith(`._domainkey.${dom}`)).map((c) => c.name).sort()).toEqual([`DKIM ${next}._domainkey.${dom}`, `DKIM mail._domainkey.${dom}`]);
      const again = await apply();
      expect(JSON.parse(again.stdout)).toMatchObject({ changes: 0, dns: { changes: 0 } });
      // Past the grace period: the old key is deleted on the host and unpublished.
      writeFileSync(file, playbook(mta, host, dom, '', { key: 'rsa-4096', grace: '1s' }));
      const g = await apply();
      expect(g.code, g.stderr).toBe(0);
      expect(g.stderr).toMatch(new RegExp(`DKIM mail._domainkey.${dom.replace('.', '\\.')}: retired for \\d+ (seconds|minutes?) \\(grace 1 second\\): unpublished and deleted`));
      expect(await lifecycle()).toEqual([`${next} rsa 4096 signing`]);
      expect(await txt('mail')).toBe('');
      expect((await world.vps.exec(host, `test -e /etc/dkimkeys/${dom}.mail.key || echo gone`)).stdout.trim()).toBe('gone');
      expect(JSON.parse((await apply()).stdout)).toMatchObject({ changes: 0, dns: { changes: 0 } });
    });

    it('DKIM rotation without dns.update: dkim rotate makes a new key that waits until DNS serves it; published by hand, it signs at the next apply', async () => {
      const current = `mail-${today()}`;
      const next = `${current}-2`;
      const server = `127.0.0.1:${world.dns.port}`;
      writeFileSync(file, playbook(mta, host, dom, '', { key: 'rsa-4096', grace: '1s', update: false }));
      const r = await cli(['dkim', 'rotate', '--yes', '--json', '--resolver', server, '--domain', dom, file], PW);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`DKIM ${next}._domainkey.${dom}: new rsa-4096 key to replace ${current}._domainkey.${dom} (rsa-4096)`);
      expect(await lifecycle()).toEqual([`${current} rsa 4096 signing`, `${next} rsa 4096 pending`]);
      expect(await signedWith()).toEqual([`pass ${current}`]);
      const p = await cli(['plan', '--resolver', server, file], PW);
      expect(p.stdout).toContain(`note: DKIM ${next}._domainkey.${dom}: waiting for DNS to serve it before it signs; ${current}._domainkey.${dom} signs until then`);
      // The operator publishes the zone that mailops rendered (here: the new record, by hand).
      const key = readState(file).dkim[`${next}._domainkey.${dom}`]!;
      expect(key).toMatchObject({ host: name, status: 'pending', algorithm: 'rsa', bits: 4096 });
      const chunks = `v=DKIM1; k=rsa; p=${key.publicKey}`.match(/.{1,255}/g)!.map((c) => `"${c}"`).join(' ');
      await world.setRecords(dom, [`update add ${next}._domainkey.${dom}. 300 TXT ${chunks}`]);
      const s = await cli(['apply', '--yes', '--json', '--resolver', server, file], PW);
      expect(s.code, s.stderr).toBe(0);
      expect(s.stderr).toContain(`DKIM ${next}._domainkey.${dom}: DNS serves it, so it signs from now on; ${current}._domainkey.${dom} stops signing and stays published for 1 second`);
      expect(await signedWith()).toEqual([`pass ${next}`]);
      // Back to dns.update: the retired key is unpublished, and all is converged.
      writeFileSync(file, playbook(mta, host, dom, '', { key: 'rsa-4096', grace: '1s' }));
      expect((await apply()).code).toBe(0);
      expect(await lifecycle()).toEqual([`${next} rsa 4096 signing`]);
      expect(await txt(current)).toBe('');
      expect(JSON.parse((await apply()).stdout)).toMatchObject({ changes: 0, dns: { changes: 0 } });
    });
  });
}
