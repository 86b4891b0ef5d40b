/**
 * `mailops test` with plain data: the cases a playbook promises, the throwaway copy of a playbook, and the
 * JUnit report.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { XMLParser } from 'fast-xml-parser';
import type { Domain, Mailbox, Site } from '../../src/model/site.js';
import { checkSite } from '../../src/site/load.js';
import { deriveCases, MAX_LIMIT_PROBE } from '../../src/testrun/cases.js';
import { throwawayPlaybook } from '../../src/testrun/copy.js';
import { junitXml, summaryText } from '../../src/testrun/report.js';
import type { TestReport } from '../../src/testrun/report.js';

const mb = (address: string, o: Partial<Mailbox> = {}): Mailbox => ({ local: address.split('@')[0]!, address, passwordHash: '{CRYPT}!', sendAs: [], send: true, enabled: true, ...o });
const dom = (name: string, o: Partial<Domain> = {}): Domain => ({ name, spf: { policy: '-all', include: [] }, mailboxes: [], aliases: [], ...o });
const alias = (address: string, targets: string[]) => ({ local: address.split('@')[0]!, address, targets });
const site = (domains: Domain[], stack: Partial<Site['stack']> = {}): Site => ({ stack: { imap: true, pop3: false, ...stack }, domains }) as unknown as Site;

describe('deriveCases', () => {
  const s = site([
    dom('a.test', {
      mailboxes: [
        mb('amy@a.test', { quota: '1G', quotaBytes: 1 << 30, sendAs: ['sales@a.test'] }),
        mb('bo@a.test', { send: false }),
        mb('cy@a.test', { enabled: false }),
        mb('di@a.test', { sendLimit: { count: 3, per: 'hour' } }),
        mb('ed@a.test', { sendLimit: { count: 500, per: 'day' } }),
      ],
      aliases: [alias('sales@a.test', ['amy@a.test', 'team@a.test']), alias('team@a.test', ['bo@a.test', 'x@partner.example']), alias('gone@a.test', ['cy@a.test'])],
      catchAll: 'amy@a.test',
    }),
    dom('b.test', { mailboxes: [mb('zo@b.test')] }),
  ]);
  const cases = deriveCases(s, 'T');
  const named = (n: string) => cases.find((c) => c.name === n);

  it('every enabled mailbox: a login per protocol that is on, delivery, its quota; a disabled one: every login and RCPT refused', () => {
    expect(cases.filter((c) => c.kind === 'login' && c.mailbox === 'amy@a.test').map((c) => c.kind === 'login' && c.protocol)).toEqual(['imap', 'smtp']);
    expect(named('amy@a.test: quota 1G reported over IMAP')).toEqual({ kind: 'quota', name: 'amy@a.test: quota 1G reported over IMAP', mailbox: 'amy@a.test', bytes: 1 << 30 });
    expect(named('amy@a.test: mail from a stranger is delivered')).toMatchObject({ kind: 'deliver', to: 'amy@a.test', mailboxes: ['amy@a.test'], outside: [] });
    expect(cases.filter((c) => c.kind === 'login' && c.mailbox === 'cy@a.test').every((c) => c.kind === 'login' && c.expect === 'refused')).toBe(true);
    expect(named('cy@a.test (enabled: false): refused at RCPT')).toMatchObject({ kind: 'refused-rcpt', to: 'cy@a.test', expect: '550 5.2.1' });
  });

  it('aliases are followed through other aliases to mailboxes and outside addresses; an alias of disabled mailboxes only is refused', () => {
    expect(named('alias sales@a.test delivers to amy@a.test, team@a.test')).toMatchObject({ mailboxes: ['amy@a.test', 'bo@a.test'], outside: ['x@partner.example'] });
    expect(named('alias gone@a.test (every target disabled): refused at RCPT')).toMatchObject({ kind: 'refused-rcpt', expect: '550 5.2.1' });
  });

  it('a catch-all delivers unknown addresses to its target; a domain without one refuses them with 550 5.1.1', () => {
    expect(named('catch-all of a.test delivers unknown addresses to amy@a.test')).toMatchObject({ kind: 'deliver', to: 'nobody-T@a.test', mailboxes: ['amy@a.test'] });
    expect(named('b.test: an unknown recipient is refused at RCPT')).toMatchObject({ kind: 'refused-rcpt', to: 'nobody-T@b.test', expect: '550 5.1.1' });
  });

  it('senders: own address and send_as allowed, an address of another mailbox refused; send: false refused; limits last, a large one skipped with the reason', () => {
    expect(cases.filter((c) => c.kind === 'send-as' && c.login === 'amy@a.test').map((c) => c.kind === 'send-as' && [c.from, c.allowed])).toEqual([
      ['amy@a.test', true],
      ['sales@a.test', true],
      ['bo@a.test', false],
    ]);
    expect(named('bo@a.test (send: false): submission refused')).toEqual({ kind: 'send-off', name: 'bo@a.test (send: false): submission refused', login: 'bo@a.test' });
    expect(cases.slice(-2)).toEqual([
      { kind: 'send-limit', name: 'di@a.test: send_limit 3/hour enforced', login: 'di@a.test', count: 3, per: 'hour' },
      { kind: 'skip', name: 'ed@a.test: send_limit 500/day enforced', reason: `proving it would take 501 messages; limits up to ${MAX_LIMIT_PROBE} are proven` },
    ]);
    // A rate-limited login spends its allowance in its limit case only.
    expect(cases.some((c) => c.kind === 'send-as' && c.login === 'di@a.test')).toBe(false);
  });

  it('POP3 logins when POP3 is on; no quota case without IMAP', () => {
    const p = deriveCases(site([dom('c.test', { mailboxes: [mb('a@c.test', { quota: '1M', quotaBytes: 1 << 20 })] })], { imap: false, pop3: true }));
    expect(p.filter((c) => c.kind === 'login').map((c) => c.kind === 'login' && c.protocol)).toEqual(['pop3', 'smtp']);
    expect(p.some((c) => c.kind === 'quota')).toBe(false);
  });
});

describe('throwawayPlaybook', () => {
  const original = `# my site
site: corp
hosts:
  - name: mx1
    ssh: { address: 203.0.113.5, user: deploy, identity: ~/.ssh/corp }
    hostname: mail.corp.example
    ipv4: 203.0.113.5
    ipv6: 2001:db8::5
    os: rhel
stack:
  mta: exim
  tls: { mode: acme, email: ops@corp.example }
  relay: { host: smtp.sendgrid.net, port: 2525, username: apikey, password: { file: secrets/relay } }
dns:
  nameservers: [ns1.corp.example, ns.provider.net]
  update: { server: 203.0.113.53, key: { file: keys/tsig.key } }
domains:
  - name: corp.example
    spf: { include: [sendgrid.net, spf.corp.example, _spf.google.com] }
    mailboxes:
      - { name: ann, password: { file: secrets/ann } }
      - { name: ben, password_hash: "{SHA512-CRYPT}$6$x$y" }
`;
  const world = {
    hosts: { mx1: { ip: '172.20.0.3', sshPort: 32768, hostKey: 'ssh-ed25519 AAAAC3' } },
    identity: '/tmp/w/id_ed25519',
    dns: { ip: '172.20.0.2', port: 35000, keyFile: '/tmp/w/mailops-tsig.key' },
    relay: { hostname: 'smtp.relay.test', ports: [587, 2525, 465], spfInclude: '_spf.relay.test' },
  };
  const c = throwawayPlaybook(original, '/home/ops/site', world, ['corp.example']);
  const y = parse(c.text);

  it('hosts reached through the containers, published with their test addresses; in-zone name servers at the test DNS server; updates to it', () => {
    expect(y.hosts[0]).toEqual({ name: 'mx1', ssh: { address: '127.0.0.1', port: 32768, user: 'root', identity: '/tmp/w/id_ed25519', host_key: 'ssh-ed25519 AAAAC3' }, hostname: 'mail.corp.example', ipv4: '172.20.0.3', os: 'auto' });
    expect(y.dns.nameservers).toEqual([{ name: 'ns1.corp.example', ipv4: '172.20.0.2' }, 'ns.provider.net']);
    expect(y.dns.update).toEqual({ server: '127.0.0.1:35000', key: { file: '/tmp/w/mailops-tsig.key' } });
    expect(c.text.startsWith('# my site\n')).toBe(true);
  });

  it('secret files made absolute; ACME replaced by self-signed; the relay by the test smarthost with the same login; a hash-only mailbox gets a test password; each said in a note', () => {
    expect(y.domains[0].mailboxes[0]).toEqual({ name: 'ann', password: { file: '/home/ops/site/secrets/ann' } });
    expect(y.domains[0].mailboxes[1]).toEqual({ name: 'ben', password: { env: 'MAILOPS_TEST_PASSWORD_1' } });
    expect(c.env['MAILOPS_TEST_PASSWORD_1']).toMatch(/^[0-9a-f]{24}$/);
    expect(y.stack.tls).toEqual({ mode: 'self-signed' });
    expect(y.stack.relay).toEqual({ host: 'smtp.relay.test', port: 2525, username: 'apikey', password: { file: '/home/ops/site/secrets/relay' } });
    // The includes the test network cannot resolve give way to the stand-in's; the site's own stays.
    expect(y.domains[0].spf).toEqual({ include: ['spf.corp.example', '_spf.relay.test'] });
    expect(c.notes).toEqual([
      'host mx1: os rhel is tested on the Debian test image (os: auto in the copy)',
      'tls.mode acme is tested with a self-signed certificate (the test network has no ACME server reaching it)',
      "stack.relay: the test network's smarthost smtp.relay.test (with the same login) stands in for smtp.sendgrid.net",
      'domain corp.example: spf.include sendgrid.net, _spf.google.com → _spf.relay.test, the include of the stand-in smarthost',
      'mailbox ben@corp.example: only a password_hash is given, so the throwaway copy logs in with a test password of its own',
    ]);
  });

  it('the copy is a valid playbook', () => {
    process.env['MAILOPS_TEST_PASSWORD_1'] = c.env['MAILOPS_TEST_PASSWORD_1'];
    const r = checkSite('/tmp/w/site.yaml', { secrets: 'warning' }, c.text);
    expect(r.ok ? [] : r.diagnostics.map((d) => `${d.path}: ${d.message}`)).toEqual([]);
  });
});

describe('reports', () => {
  const report: TestReport = {
    ok: false,
    playbook: 'site.yaml',
    seconds: 12.5,
    notes: ['a note'],
    suites: [
      { name: 'apply', cases: [{ name: 'apply site.yaml', status: 'passed', detail: 'mx1: 3 changes', seconds: 10 }], seconds: 10.1 },
      {
        name: 'checks',
        cases: [
          { name: 'bob@a.test: mail from a stranger is delivered', status: 'failed', detail: 'RCPT TO:<bob@a.test> answered "552 5.2.2 <bob@a.test>: Recipient address rejected: Mailbox is full"', seconds: 0.2 },
          { name: 'ed@a.test: send_limit 500/day enforced', status: 'skipped', detail: 'too many', seconds: 0 },
        ],
        seconds: 0.25,
      },
    ],
  };

  it('JUnit XML: testsuites > testsuite > testcase with failure and skipped, counts and times', () => {
    const x = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(junitXml(report));
    expect(x.testsuites).toMatchObject({ '@tests': '3', '@failures': '1', '@skipped': '1', '@errors': '0', '@time': '12.500' });
    const [apply, checks] = x.testsuites.testsuite;
    expect(apply).toMatchObject({ '@name': 'apply', '@tests': '1', '@failures': '0', '@time': '10.100' });
    expect(x.testsuites.testsuite[1]).toMatchObject({ '@time': '0.250' });
    expect(checks.testcase[0]).toMatchObject({ '@classname': 'mailops.checks', '@name': 'bob@a.test: mail from a stranger is delivered', failure: { '@message': 'RCPT TO:<bob@a.test> answered "552 5.2.2 <bob@a.test>: Recipient address rejected: Mailbox is full"', '@type': 'failure' } });
    expect(checks.testcase[1].skipped).toEqual({ '@message': 'too many' });
  });

  it('the summary names every failure and the totals', () => {
    expect(summaryText(report).split('\n')).toEqual([
      'apply: 1 passed in 10.1 s',
      'checks: 0 passed, 1 failed, 1 skipped in 0.3 s',
      '  FAILED bob@a.test: mail from a stranger is delivered: RCPT TO:<bob@a.test> answered "552 5.2.2 <bob@a.test>: Recipient address rejected: Mailbox is full"',
      'mailops test: FAILED: 1 passed, 1 failed, 1 skipped in 12.5 s',
    ]);
  });
});
