import { describe, expect, it } from 'vitest';
import { digFailure } from '../../src/dns/axfr.js';
import { digArgs, failureMessage, formatServer, nsupdateArgs, parseServer, parseTsigKey, redact } from '../../src/dns/client.js';
import type { TsigKey } from '../../src/dns/client.js';
import { nsupdateFailure } from '../../src/dns/update.js';
import { UserError } from '../../src/errors.js';
import { fixture, fixtureNames } from '../fixtures/dns/load.js';

const keyText = 'key "mailops-tsig" {\n\talgorithm hmac-sha256;\n\tsecret "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=";\n};\n';
const key: TsigKey = { name: 'mailops-tsig', algorithm: 'hmac-sha256', secret: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=' };

describe('server addresses', () => {
  it('parses HOST[:PORT] with IPv6 in brackets, default port 53', () => {
    expect(parseServer('192.0.2.53')).toEqual({ host: '192.0.2.53', port: 53 });
    expect(parseServer('192.0.2.53:5353')).toEqual({ host: '192.0.2.53', port: 5353 });
    expect(parseServer('NS1.Example.net')).toEqual({ host: 'ns1.example.net', port: 53 });
    expect(parseServer('ns1.example.net.:53')).toEqual({ host: 'ns1.example.net.', port: 53 });
    expect(parseServer('[2001:db8::53]:5353')).toEqual({ host: '2001:db8::53', port: 5353 });
    expect(parseServer('[2001:db8::53]')).toEqual({ host: '2001:db8::53', port: 53 });
    expect(parseServer('2001:db8::53')).toEqual({ host: '2001:db8::53', port: 53 });
    expect(formatServer({ host: '2001:db8::53', port: 53 })).toBe('[2001:db8::53]:53');
    expect(formatServer({ host: '192.0.2.53', port: 53 })).toBe('192.0.2.53:53');
  });

  it('refuses what is not one, with a usable message', () => {
    for (const bad of ['', '192.0.2.53:0', '192.0.2.53:70000', 'host:port', '[192.0.2.53]:53', 'a b', 'no..such', '-x.example']) {
      expect(() => parseServer(bad), bad).toThrow(UserError);
    }
    expect(() => parseServer('x:y')).toThrow(/expected HOST\[:PORT\] \(an IPv6 address as \[ADDRESS\]:PORT\)/);
  });
});

describe('TSIG key files', () => {
  it('reads what tsig-keygen writes, and variants BIND accepts', () => {
    expect(parseTsigKey(keyText, 'f')).toEqual(key);
    expect(parseTsigKey(`# comment\n// another\n/* block */ key mailops-tsig. { algorithm "HMAC-SHA256"; secret "${key.secret}"; };`, 'f')).toEqual(key);
  });

  it('says what is wrong without printing the secret', () => {
    const where = 'TSIG key file /etc/mailops/tsig.key';
    const cases: Array<[string, RegExp]> = [
      ['garbage', /no key in it; expected a BIND key file as tsig-keygen writes it/],
      [keyText + keyText, /2 keys, mailops needs exactly one/],
      [keyText.replace('hmac-sha256', 'hmac-sha999'), /unknown algorithm hmac-sha999/],
      [keyText.replace(/secret "[^"]+"/, 'secret "not base64!!"'), /the secret of key mailops-tsig is not base64/],
      [keyText.replace(/\tsecret "[^"]+";\n/, ''), /secret of key mailops-tsig is missing/],
    ];
    for (const [text, re] of cases) {
      let message = '';
      try {
        parseTsigKey(text, where);
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        message = (e as Error).message;
      }
      expect(message).toMatch(re);
      expect(message.startsWith(where)).toBe(true);
      expect(message).not.toContain('not base64!!');
    }
  });

  it('redacts secrets, and the key argument nsupdate echoes', () => {
    expect(redact(`x ${key.secret} y`, [key.secret])).toBe('x <secret> y');
    const echoed = fixture('nsupdate-bad-base64-key').stderr;
    expect(echoed).toContain('not base64!!');
    expect(redact(echoed, [])).toContain('could not create key from hmac-sha256:mailops-tsig:<secret>: bad base64 encoding');
    expect(redact(echoed, [])).not.toContain('not base64!!');
  });
});

describe('command lines', () => {
  const server = { host: '127.0.0.1', port: 53530 };
  it('are the ones the fixtures were recorded with', () => {
    const ok = fixture('dig-axfr-ok');
    expect(digArgs(server, 'example.com', 'AXFR', '<KEYS>/mailops.key', 3)).toEqual(ok.argv);
    expect(digArgs(server, 'Example.COM.', 'SOA', undefined, 3)).toEqual(fixture('dig-soa-ok').argv);
    expect(nsupdateArgs('<KEYS>/mailops.key', 5)).toEqual(fixture('nsupdate-ok').argv);
    expect(ok.argv).not.toContain('-y');
  });
});

describe('error messages for every recorded failure', () => {
  const server = { host: '192.0.2.53', port: 53 };
  const expected: Record<string, string> = {
    'dig-axfr-no-key': '192.0.2.53:53 refused the transfer of zone example.com (REFUSED): does the key have transfer rights for the zone (allow-transfer for TSIG key mailops-tsig)? mailops reads the zone to know what to change',
    'dig-axfr-wrong-secret': "TSIG key mailops-tsig was rejected by 192.0.2.53:53 for zone example.com: check the key file (BADSIG: the secret differs from the server's)",
    'dig-axfr-unknown-key': 'TSIG key mailops-tsig was rejected by 192.0.2.53:53 for zone example.com: check the key file (BADKEY: the server knows no key of that name and algorithm)',
    'dig-axfr-badtime': 'TSIG key mailops-tsig was rejected by 192.0.2.53:53 for zone example.com (BADTIME): the clocks of this machine and of the server differ by more than 5 minutes; synchronise them (NTP)',
    'dig-axfr-not-served': '192.0.2.53:53 does not serve zone example.com (NOTAUTH): point dns.update.server at the primary server of the zone',
    'dig-axfr-not-listening': 'DNS server 192.0.2.53:53 does not answer (zone example.com): Connection to 127.0.0.1#53531(127.0.0.1) for example.com failed: connection refused.; check dns.update.server (or --dns-server) and that it accepts TCP on port 53',
    'dig-axfr-timeout': 'DNS server 192.0.2.53:53 does not answer (zone example.com): communications error to 127.0.0.1#53532: timed out; check dns.update.server (or --dns-server) and that it accepts TCP on port 53',
    'dig-axfr-no-address': "DNS server 192.0.2.53:53 does not answer (zone example.com): its name does not resolve (couldn't get address for 'no..such.invalid': not found); check dns.update.server (or --dns-server)",
    'nsupdate-key-not-allowed': '192.0.2.53:53 refused the update of zone example.com (REFUSED): does the key have update rights for the zone (allow-update or update-policy for TSIG key mailops-tsig)?',
    'nsupdate-wrong-secret': "TSIG key mailops-tsig was rejected by 192.0.2.53:53 for zone example.com: check the key file (BADSIG: the secret differs from the server's)",
    'nsupdate-not-served': '192.0.2.53:53 does not serve zone example.com (NOTAUTH): point dns.update.server at the primary server of the zone',
    'nsupdate-notzone': '192.0.2.53:53 answered NOTZONE to the update of zone example.com: a record name lies outside the zone as the server has it (a delegated subzone?)',
    'dig-soa-not-served': '192.0.2.53:53 refused the SOA query for zone example.com (REFUSED): is it a server of the zone? check dns.update.server (or --dns-server)',
    'nsupdate-prereq-nxrrset': '192.0.2.53:53 did not apply the update of zone example.com (NXRRSET): the zone changed after mailops read it; run the command again',
    'nsupdate-timeout': 'DNS server 192.0.2.53:53 does not answer (zone example.com): Communication with 127.0.0.1#53532 failed: timed out; check dns.update.server (or --dns-server) and that it accepts TCP on port 53',
    'nsupdate-bad-base64-key': 'TSIG key mailops-tsig could not be used with 192.0.2.53:53 for zone example.com: nsupdate says "could not create key from hmac-sha256:mailops-tsig:<secret>: bad base64 encoding"; check the key file',
  };

  for (const name of fixtureNames) {
    const f = fixture(name);
    const failure = f.tool === 'dig' ? digFailure(f, f.argv.at(-1)!) : nsupdateFailure(f);
    if (!failure) continue;
    it(name, () => {
      const operation = f.tool === 'nsupdate' ? 'update' : f.argv.at(-1) === 'AXFR' ? 'transfer' : 'query';
      const message = redact(failureMessage({ ...failure, detail: redact(failure.detail, [key.secret]) }, { server, zone: 'example.com', operation, key }), [key.secret]);
      if (expected[name]) expect(message).toBe(expected[name]);
      expect(message).toMatch(/192\.0\.2\.53(:53)?/);
      expect(message).toContain('example.com');
      expect(message).not.toContain(key.secret);
      expect(message).not.toContain('not base64!!');
      expect(message).not.toMatch(/\n/);
    });
  }

  it('names the package when a tool is missing', () => {
    const f = nsupdateFailure({ exitCode: 127, stdout: '', stderr: 'nsupdate: command not found' })!;
    expect(failureMessage(f, { server, zone: 'example.com', operation: 'update' })).toMatch(/^nsupdate is not installed: install bind9-dnsutils/);
  });
});
