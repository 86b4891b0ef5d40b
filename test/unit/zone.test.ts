import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSite } from '../../src/site/load.js';
import { emptyState, readState } from '../../src/state/state.js';
import { renderZone, renderZones, recordSerials, rname } from '../../src/dns/zone.js';
import { reverseName, splitTxt } from '../../src/dns/records.js';

const golden = new URL('../golden/', import.meta.url).pathname;
const cases = readdirSync(golden).filter((c) => existsSync(join(golden, c, 'site.yaml')));

function namedCheckzone(): string {
  const found = spawnSync('sh', ['-c', 'command -v named-checkzone'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('named-checkzone is missing: the test set-up (scripts/test.sh) installs bind9-utils');
  return found;
}

beforeAll(() => {
  process.env['MAILOPS_BOB_PASSWORD'] = 'zone-test-password';
});

describe('zones pass named-checkzone', () => {
  it('has golden cases to check (an empty list would test nothing)', () => {
    expect(cases).toEqual(expect.arrayContaining(['contract', 'exim', 'multi-domain', 'rhel']));
  });

  for (const c of cases) {
    it(c, () => {
      const { site } = loadSite(join(golden, c, 'site.yaml'));
      const dir = mkdtempSync(join(tmpdir(), 'mailops-zone-'));
      const zones = renderZones(site, readState(site.file));
      expect(zones.map((z) => z.domain)).toEqual(site.domains.map((d) => d.name));
      for (const z of zones) {
        const file = join(dir, `${z.domain}.zone`);
        writeFileSync(file, z.text);
        const r = spawnSync(namedCheckzone(), ['-k', 'fail', '-n', 'fail', '-m', 'fail', '-M', 'fail', '-S', 'fail', '-i', 'local', z.domain, file], { encoding: 'utf8' });
        expect(r.status, `${c}/${z.domain}:\n${r.stdout}${r.stderr}\n${z.text}`).toBe(0);
        expect(r.stdout).toContain(`loaded serial ${z.serial}`);
      }
    });
  }
});

describe('zone content', () => {
  const load = (c: string) => loadSite(join(golden, c, 'site.yaml')).site;

  it('holds every record the mail domain needs', () => {
    const site = load('contract');
    const z = renderZone(site, 'example.com', readState(site.file)).text;
    for (const line of [
      /^@\s+IN NS\s+ns1\.example-dns\.net\.$/m,
      /^@\s+IN MX\s+10 mail\.example\.com\.$/m,
      /^mail\s+IN A\s+203\.0\.113\.10$/m,
      /^mail\s+IN AAAA\s+2001:db8::10$/m,
      /^@\s+IN TXT\s+"v=spf1 ip4:203\.0\.113\.10 ip6:2001:db8::10 include:_spf\.crm-provider\.example -all"/m,
      /^_dmarc\s+IN TXT\s+"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example\.com"/m,
      /^mail\._domainkey\s+IN TXT\s+"v=DKIM1; k=rsa; p=/m,
      /^imap\s+IN CNAME mail\.example\.com\.$/m,
      /^pop\s+IN CNAME mail\.example\.com\.$/m,
      /^smtp\s+IN CNAME mail\.example\.com\.$/m,
      /^_submission\._tcp\s+IN SRV\s+0 1 587 mail\.example\.com\.$/m,
      /^_submissions\._tcp\s+IN SRV\s+0 1 465 mail\.example\.com\.$/m,
      /^_imap\._tcp\s+IN SRV\s+0 1 143 /m,
      /^_imaps\._tcp\s+IN SRV\s+0 1 993 /m,
      /^_pop3\._tcp\s+IN SRV\s+0 1 110 /m,
      /^_pop3s\._tcp\s+IN SRV\s+0 1 995 /m,
      /^; PTR .*10\.113\.0\.203\.in-addr\.arpa\. PTR mail\.example\.com\.$/m,
      /^; PTR .*0\.1\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.0\.8\.b\.d\.0\.1\.0\.0\.2\.ip6\.arpa\. PTR mail\.example\.com\.$/m,
    ]) {
      expect(z).toMatch(line);
    }
  });

  it('splits long DKIM keys into strings of at most 255 bytes', () => {
    const site = load('contract');
    const z = renderZone(site, 'example.com', readState(site.file)).text;
    const dkim = z.split('\n').find((l) => l.startsWith('mail._domainkey'))!;
    const strings = [...dkim.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    expect(strings.length).toBeGreaterThan(1);
    for (const s of strings) expect(Buffer.byteLength(s)).toBeLessThanOrEqual(255);
    expect(splitTxt('x'.repeat(600)).map((s) => s.length)).toEqual([255, 255, 90]);
  });

  it('says so in a comment until the DKIM key exists', () => {
    const site = load('contract');
    const z = renderZone(site, 'example.com', emptyState()).text;
    expect(z).not.toMatch(/_domainkey\s+IN TXT/);
    expect(z).toMatch(/^; DKIM: mail\._domainkey\.example\.com\. TXT is published once the key exists/m);
  });

  it('publishes "0 0 0 ." SRV for services that are off, and no CNAME for them', () => {
    const site = load('multi-domain');
    const z = renderZone(site, 'acme.test', emptyState()).text;
    expect(z).toMatch(/^_pop3s\._tcp\s+IN SRV\s+0 0 0 \.$/m);
    expect(z).not.toMatch(/^pop\s/m);
    expect(z).toMatch(/^@\s+IN MX\s+20 mx2\.acme-backup\.test\.$/m);
    expect(z).toMatch(/^mx1\s+IN A\s+198\.51\.100\.20$/m);
    expect(z).not.toMatch(/^mx2/m);
    expect(z).toMatch(/rua=mailto:dmarc@acme\.test; ruf=mailto:forensics@acme\.test/);
    expect(z).toMatch(/pct=50/);
  });

  it('serials without state: date-based; kept while the content is unchanged; above the recorded and the live serial when it changes', () => {
    const site = load('contract');
    const now = new Date(Date.UTC(2026, 10, 23, 10, 40));
    const first = renderZone(site, 'example.com', emptyState(), { now });
    expect(first.serial).toBe(2026112342);
    const state = recordSerials(emptyState(), [first]);
    expect(renderZone(site, 'example.com', state, { now: new Date(Date.UTC(2026, 10, 30)) }).serial).toBe(2026112342);
    const changed = { ...site, dns: { ...site.dns, ttl: 7200 } };
    // Changed again within the same quarter hour: still a new serial, never the same one for other content.
    expect(renderZone(changed, 'example.com', state, { now }).serial).toBe(2026112343);
    // A server that is ahead (it counts its own updates) wins.
    expect(renderZone(changed, 'example.com', state, { now, live: { 'example.com': 2026112399 } }).serial).toBe(2026112400);
    expect(renderZone(site, 'example.com', state, { now, live: { 'example.com': 2026112342 } }).serial).toBe(2026112342);
  });

  it('formats SOA contacts and reverse names', () => {
    expect(rname('dns.admin@acme.test')).toBe('dns\\.admin.acme.test.');
    expect(reverseName('192.0.2.1')).toBe('1.2.0.192.in-addr.arpa.');
    expect(reverseName('2001:db8::1')).toBe('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.');
  });
});
