/**
 * The DNS engine against a real BIND: axfr → diff → push → axfr → nothing left to do, with the records
 * mailops does not render left as they were. Runs a throwaway `named -g` on 127.0.0.1 and a free high
 * port; skipped (saying why) when bind9 or bind9-dnsutils is not installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axfr, pushChanges, soaSerial } from '../../src/dns/client.js';
import type { TsigKeySource } from '../../src/dns/client.js';
import type { ZoneModel } from '../../src/dns/records.js';
import { desiredRrsets, txtText } from '../../src/dns/rrset.js';
import type { RRset } from '../../src/dns/rrset.js';
import { diffZone, formatDnsChanges } from '../../src/dns/update.js';
import { UserError } from '../../src/errors.js';

const PATH = `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`;
const tool = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8', env: { ...process.env, PATH } }).stdout.trim();
const missing = ['named', 'tsig-keygen', 'dig', 'nsupdate'].filter((t) => !tool(t));
const why = missing.length ? `needs ${missing.join(', ')} (apt-get install bind9 bind9-dnsutils)` : '';
if (why) console.warn(`dns-named.test.ts skipped: ${why}`);

const dkim = `v=DKIM1; k=rsa; p=${'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0'.repeat(4)}`;

const model = (over: Partial<ZoneModel> = {}): ZoneModel => ({
  domain: 'example.com',
  ttl: 3600,
  notes: [],
  records: [
    { name: '@', type: 'NS', data: 'ns1.example-dns.net.' },
    { name: '@', type: 'NS', data: 'ns2.example-dns.net.' },
    { name: '@', type: 'MX', data: '10 mail.example.com.' },
    { name: 'mail', type: 'A', data: '203.0.113.10' },
    { name: 'mail', type: 'AAAA', data: '2001:db8::10' },
    { name: 'mail', type: 'TXT', data: ['v=spf1 ip4:203.0.113.10 ip6:2001:db8::10 -all'] },
    { name: '@', type: 'TXT', data: ['v=spf1 ip4:203.0.113.10 ip6:2001:db8::10 include:_spf.crm-provider.example -all'] },
    { name: '_dmarc', type: 'TXT', data: ['v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.com'] },
    { name: 'mail._domainkey', type: 'TXT', data: [dkim.slice(0, 255), dkim.slice(255)] },
    { name: 'imap', type: 'CNAME', data: 'mail.example.com.' },
    { name: 'smtp', type: 'CNAME', data: 'mail.example.com.' },
    { name: '_submission._tcp', type: 'SRV', data: '0 1 587 mail.example.com.' },
    { name: '_pop3s._tcp', type: 'SRV', data: '0 0 0 .' },
  ],
  ...over,
});

const ZONE = `$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1.example-dns.net. hostmaster.example.com. ( 2024010100 3600 900 1209600 300 )
@ IN NS ns1.example-dns.net.
@ IN NS ns2.example-dns.net.
@ IN MX 10 Mail.Example.COM.
Mail IN A 203.0.113.10
mail IN AAAA 2001:db8:0:0::10
imap IN A 203.0.113.10
www 300 IN A 198.51.100.7
@ IN TXT "v=spf1 ip4:203.0.113.10 -all"
@ IN TXT "google-site-verification=abc123"
odd IN TXT "say \\"hi\\"" "caf\\195\\169"
_submission._tcp IN SRV 0 1 587 MAIL.example.com.
smtp IN CNAME mail.example.com.
`;

describe.skipIf(why !== '')('DNS UPDATE against a real named', () => {
  let dir = '';
  let named: ChildProcess | undefined;
  let server = '';
  let key: TsigKeySource = { file: '' };
  const rrset = (sets: RRset[], name: string, type: string) => sets.find((s) => s.name === name && s.type === type);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailops-named-'));
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    server = `127.0.0.1:${port}`;
    const keyFile = join(dir, 'mailops.key');
    writeFileSync(keyFile, spawnSync(tool('tsig-keygen'), ['-a', 'hmac-sha256', 'mailops-tsig'], { encoding: 'utf8' }).stdout, { mode: 0o600 });
    writeFileSync(join(dir, 'wrong.key'), spawnSync(tool('tsig-keygen'), ['-a', 'hmac-sha256', 'mailops-tsig'], { encoding: 'utf8' }).stdout, { mode: 0o600 });
    key = { file: keyFile };
    writeFileSync(join(dir, 'example.com.zone'), ZONE);
    writeFileSync(
      join(dir, 'named.conf'),
      `include "${keyFile}";
options { directory "${dir}"; listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; }; pid-file "${dir}/named.pid"; recursion no; dnssec-validation no; };
controls { };
zone "example.com" { type primary; file "${dir}/example.com.zone"; allow-update { key mailops-tsig; }; allow-transfer { key mailops-tsig; }; };
`,
    );
    const proc = spawn(tool('named'), ['-g', '-c', join(dir, 'named.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    named = proc;
    let log = '';
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    for (let i = 0; i < 100 && !/\brunning\b/.test(log) && proc.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    if (!/\brunning\b/.test(log)) throw new Error(`named did not start:\n${log}`);
  });

  afterAll(async () => {
    if (named && named.exitCode === null) {
      const exited = new Promise((r) => named!.once('exit', r));
      named.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads, changes and re-reads the zone until nothing is left to do, leaving foreign records alone', async () => {
    const before = await axfr(server, 'example.com', key);
    const desired = desiredRrsets(model());
    const changes = diffZone('example.com', desired, before.rrsets);
    expect(formatDnsChanges(changes)).toMatch(/~ imap: A 203\.0\.113\.10 → CNAME mail\.example\.com\./);
    expect(changes.map((c) => `${c.action} ${c.name} ${c.type}`)).toEqual([
      'create mail.example.com. TXT',
      'update example.com. TXT',
      'create _dmarc.example.com. TXT',
      'create mail._domainkey.example.com. TXT',
      'create imap.example.com. CNAME',
      'create _pop3s._tcp.example.com. SRV',
    ]);
    await pushChanges(server, 'example.com', changes, key);

    const after = await axfr(server, 'example.com', key);
    expect(diffZone('example.com', desired, after.rrsets)).toEqual([]);
    expect(after.soa.serial).toBeGreaterThan(before.soa.serial);
    for (const [name, type] of [['www.example.com.', 'A'], ['odd.example.com.', 'TXT']] as const) {
      expect(rrset(after.rrsets, name, type)).toEqual(rrset(before.rrsets, name, type));
    }
    expect(rrset(after.rrsets, 'imap.example.com.', 'A')).toBeUndefined();
    const apex = rrset(after.rrsets, 'example.com.', 'TXT')!.rdata.map(txtText);
    expect(apex.sort()).toEqual(['google-site-verification=abc123', 'v=spf1 ip4:203.0.113.10 ip6:2001:db8::10 include:_spf.crm-provider.example -all']);
    expect(txtText(rrset(after.rrsets, 'mail._domainkey.example.com.', 'TXT')!.rdata[0]!)).toBe(dkim);
    expect(rrset(after.rrsets, '_dmarc.example.com.', 'TXT')!.rdata).toEqual(['"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.com"']);
    expect(await soaSerial(server, 'example.com')).toBe(after.soa.serial);
  });

  it('changes TTLs and replaces the apex NS set (adds before deletes), with the key given as text', async () => {
    const text = readFileSync((key as { file: string }).file, 'utf8');
    const fromEnv: TsigKeySource = { text, origin: 'environment variable MAILOPS_TSIG_KEY' };
    const tempDirs = () => readdirSync(tmpdir()).filter((f) => f.startsWith('mailops-tsig-')).length;
    const temps = tempDirs();
    const m = model({ ttl: 7200 });
    m.records = m.records.map((r) => (r.type === 'NS' && r.data === 'ns2.example-dns.net.' ? { ...r, data: 'ns3.example-dns.net.' } : r));
    const desired = desiredRrsets(m);
    const changes = diffZone('example.com', desired, (await axfr(server, 'example.com', fromEnv)).rrsets);
    expect(changes).toHaveLength(desired.length);
    await pushChanges(server, 'example.com', changes, fromEnv);
    const after = await axfr(server, 'example.com', fromEnv);
    expect(diffZone('example.com', desired, after.rrsets)).toEqual([]);
    expect(rrset(after.rrsets, 'example.com.', 'NS')).toEqual({ name: 'example.com.', type: 'NS', ttl: 7200, rdata: ['ns1.example-dns.net.', 'ns3.example-dns.net.'] });
    expect(rrset(after.rrsets, 'www.example.com.', 'A')!.ttl).toBe(300);
    expect(tempDirs()).toBe(temps);
  });

  it('refuses a stale plan: the zone changed after it was read', async () => {
    const live = (await axfr(server, 'example.com', key)).rrsets;
    const first = desiredRrsets(model({ records: [{ name: 'mail', type: 'A', data: '203.0.113.11' }] }));
    const second = desiredRrsets(model({ records: [{ name: 'mail', type: 'A', data: '203.0.113.12' }] }));
    await pushChanges(server, 'example.com', diffZone('example.com', first, live), key);
    const stale = pushChanges(server, 'example.com', diffZone('example.com', second, live), key);
    await expect(stale).rejects.toThrow(UserError);
    await expect(stale).rejects.toThrow(new RegExp(`^${server.replace(/\./g, '\\.')} did not apply the update of zone example.com \\(NXRRSET\\): the zone changed after mailops read it`));
    expect(rrset((await axfr(server, 'example.com', key)).rrsets, 'mail.example.com.', 'A')!.rdata).toEqual(['203.0.113.11']);
  });

  it('says clearly what is wrong', async () => {
    const wrong = { file: join(dir, 'wrong.key') };
    await expect(axfr(server, 'example.com', wrong)).rejects.toThrow(`TSIG key mailops-tsig was rejected by ${server} for zone example.com: check the key file (BADSIG`);
    await expect(pushChanges(server, 'example.com', diffZone('example.com', desiredRrsets(model({ records: [{ name: 'x', type: 'A', data: '192.0.2.1' }] })), []), wrong)).rejects.toThrow(/was rejected by .* \(BADSIG/);
    await expect(axfr(server, 'nothere.test', key)).rejects.toThrow(`${server} does not serve zone nothere.test (NOTAUTH)`);
    await expect(axfr(server, 'example.com', { file: join(dir, 'absent.key') })).rejects.toThrow(`TSIG key file ${join(dir, 'absent.key')}: not found`);
    const secret = /secret "([^"]+)"/.exec(readFileSync(join(dir, 'wrong.key'), 'utf8'))![1]!;
    const err = await axfr(server, 'example.com', wrong).catch((e: Error) => e);
    expect(String((err as Error).message)).not.toContain(secret);
  });
});
