/**
 * Inbound protection as rendered and planned, with plain data: what antispam and dnsbl put into the
 * configurations of Postfix, Exim, Dovecot and rspamd (and what `antispam: false` takes out again), and
 * how a plan retires rspamd from a host that runs it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadSite } from '../../src/site/load.js';
import { renderHosts } from '../../src/render/site.js';
import { plan, sha256 } from '../../src/plan/plan.js';
import { activationScript } from '../../src/apply/script.js';
import { formatPlan } from '../../src/cli/plan-output.js';
import type { DesiredHost } from '../../src/model/desired.js';
import { loadComponents } from '../../src/components/load.js';
import type { ComponentSpec } from '../../src/components/types.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { OsFamily } from '../../src/model/site.js';

process.env['MAILOPS_BOB_PASSWORD'] = 'inbound-test-password';
const contract = readFileSync(new URL('../../playbooks/examples/contract.yaml', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'mailops-inbound-'));

interface Variant {
  mta?: 'postfix' | 'exim';
  antispam?: boolean;
  dnsbl?: string[];
  dkim?: boolean;
  family?: OsFamily;
  /** More lines under `stack:`. */
  stack?: string[];
  /** bob's send_limit. */
  sendLimit?: string;
}

/** The contract playbook with other stack settings, rendered for one host. */
function host(v: Variant = {}, components?: ComponentSpec[]): DesiredHost {
  let text = contract.replace(/^ {2}mta: postfix\b/m, `  mta: ${v.mta ?? 'postfix'}`);
  const extra = [...(v.antispam === undefined ? [] : [`  antispam: ${v.antispam}`]), ...(v.dnsbl ? [`  dnsbl: [${v.dnsbl.join(', ')}]`] : []), ...(v.stack ?? [])];
  if (v.sendLimit) text = text.replace('        send_as: [sales] ', `        send_limit: ${v.sendLimit}\n        send_as: [sales] `);
  text = text.replace(/^( {2}message_size_limit: .*)$/m, `$1\n${extra.join('\n')}`);
  if (v.dkim === false) text = text.replace(/^ {4}dkim:\n( {6}.*\n)+/m, '');
  const file = join(dir, `site-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  const { site } = loadSite(file);
  return renderHosts(site, { detectedOs: new Map([['mx1', v.family ?? 'debian']]), ...(components ? { components } : {}) })[0]!;
}

const file = (d: DesiredHost, path: string): string => {
  const f = d.files.find((x) => x.path === path);
  if (!f) throw new Error(`${path} is not rendered (${d.files.map((x) => x.path).join(', ')})`);
  return f.content;
};
const setting = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name} =`));
const RSPAMD_FILES = ['/etc/rspamd/override.d/options.inc', '/etc/rspamd/local.d/redis.conf', '/etc/rspamd/local.d/greylist.conf', '/etc/rspamd/local.d/milter_headers.conf', '/etc/rspamd/local.d/force_actions.conf', '/etc/rspamd/rspamd.local.lua'];
const antispamOnly = (x: { component: string }) => x.component === 'rspamd' || x.component === 'dovecot';

describe('inbound protection, rendered', () => {
  it('antispam is on by default: rspamd and Redis (Debian names), loopback ports checked but not opened, a drop-in so Redis runs in containers', () => {
    const d = host();
    expect(d.components).toContain('rspamd');
    expect(d.packages).toEqual(expect.arrayContaining(['rspamd', 'redis-server', 'dovecot-sieve']));
    expect(d.services.filter((s) => s.component === 'rspamd').map((s) => s.unit)).toEqual(['redis-server', 'rspamd']);
    expect(d.ports.filter((p) => p.component === 'rspamd')).toEqual([
      { port: 11332, proto: 'tcp', component: 'rspamd', listen: true },
      { port: 11333, proto: 'tcp', component: 'rspamd', listen: true },
    ]);
    expect(d.inbound).not.toContain(11332);
    expect(d.inbound).not.toContain(11333);
    expect(file(d, '/etc/mailops/firewall.nft')).not.toMatch(/1133[23]/);
    for (const p of RSPAMD_FILES) expect(file(d, p).length).toBeGreaterThan(0);
    expect(file(d, '/etc/systemd/system/redis-server.service.d/mailops.conf')).toMatch(/^\[Service\]\nPrivateUsers=false\n$/m);
    // rspamd counts as started once its milter and scanner ports listen (its first start compiles for a while).
    expect(file(d, '/etc/systemd/system/rspamd.service.d/mailops.conf')).toMatch(/^ExecStartPost=\/bin\/sh -c 'i=0; until ss -Hltn "sport = :11332" \| grep -q \. && ss -Hltn "sport = :11333" \| grep -q \.; do .*'$/m);
    expect(d.packages).toContain('iproute2');
    expect(file(d, '/etc/rspamd/override.d/options.inc')).toMatch(/^local_addrs = \[127\.0\.0\.0\/8, ::1\];$/m);
    expect(file(d, '/etc/rspamd/local.d/greylist.conf')).toMatch(/^enabled = false;$/m);
    expect(file(d, '/etc/rspamd/local.d/milter_headers.conf')).toMatch(/^use = \["authentication-results", "x-spam-status", "remove-spam-flag"\];$/m);
    // Nothing of antispam is retired (a host without replication lists what replication would leave behind).
    expect([...d.retired.units, ...d.retired.files].filter(antispamOnly)).toEqual([]);
    expect(d.validations.map((v) => v.name)).toEqual(expect.arrayContaining(['rspamadm configtest', 'sievec', 'postfix check', 'doveconf -n']));
  });

  it('RHEL: rspamd and redis by their RHEL names, no Debian drop-in', () => {
    const d = host({ family: 'rhel' });
    expect(d.packages).toEqual(expect.arrayContaining(['rspamd', 'redis', 'dovecot-pigeonhole']));
    expect(d.packages).not.toContain('redis-server');
    expect(d.services.filter((s) => s.component === 'rspamd').map((s) => s.unit)).toEqual(['redis', 'rspamd']);
    expect(d.files.filter((f) => f.path.startsWith('/etc/systemd/')).map((f) => f.path)).toEqual(['/etc/systemd/system/rspamd.service.d/mailops.conf']);
  });

  it("the rules know the server's domains and host name", () => {
    const lua = file(host(), '/etc/rspamd/rspamd.local.lua');
    expect(lua).toMatch(/^local own = \{\n {2}\['example\.com'\] = true,\n\}$/m);
    expect(lua).toMatch(/^local hostname = 'mail\.example\.com'$/m);
    expect(file(host(), '/etc/rspamd/local.d/force_actions.conf')).toMatch(/expression = "DMARC_POLICY_REJECT";\n {4}message = "Rejected by the DMARC policy of the sender's domain: no aligned SPF or DKIM pass";/);
  });

  it('Postfix: rspamd is a milter of port 25 only (tempfail when it is down); submission and local mail pass the signing milters', () => {
    const d = host();
    const main = file(d, '/etc/postfix/main.cf');
    expect(setting(main, 'mailops_signing_milters')).toEqual(['mailops_signing_milters = inet:127.0.0.1:8891']);
    expect(setting(main, 'smtpd_milters')).toEqual(['smtpd_milters = { inet:127.0.0.1:11332, default_action=tempfail }, $mailops_signing_milters']);
    expect(setting(main, 'non_smtpd_milters')).toEqual(['non_smtpd_milters = $mailops_signing_milters']);
    expect(setting(main, 'milter_default_action')).toEqual(['milter_default_action = accept']);
    const master = file(d, '/etc/postfix/master.cf');
    expect(master.match(/^ {2}-o smtpd_milters=.*$/gm)).toEqual(['  -o smtpd_milters=$mailops_signing_milters', '  -o smtpd_milters=$mailops_signing_milters']);
    // Without DKIM, only rspamd: submission passes no milter at all.
    const bare = host({ dkim: false });
    expect(setting(file(bare, '/etc/postfix/main.cf'), 'smtpd_milters')).toEqual(['smtpd_milters = { inet:127.0.0.1:11332, default_action=tempfail }']);
    expect(setting(file(bare, '/etc/postfix/main.cf'), 'non_smtpd_milters')).toEqual(['non_smtpd_milters =']);
    expect(file(bare, '/etc/postfix/master.cf').match(/^ {2}-o smtpd_milters=.*$/gm)).toEqual(['  -o smtpd_milters=', '  -o smtpd_milters=']);
  });

  it('Exim: the spam ACL of port 25 (local and authenticated mail skipped), host names looked up, Postfix replies', () => {
    const conf = file(host({ mta: 'exim' }), '/etc/exim4/exim4.conf');
    expect(setting(conf, 'spamd_address')).toEqual(['spamd_address = 127.0.0.1 11333 variant=rspamd']);
    expect(setting(conf, 'host_lookup')).toEqual(['host_lookup = *']);
    const data = /^acl_check_data:\n([\s\S]*?)\n\n/m.exec(conf)![1]!;
    const verbs = data.split('\n').filter((l) => /^ {2}[a-z]/.test(l)).map((l) => l.trim().replace(/\s+/g, ' '));
    expect(verbs).toEqual([
      'accept hosts = :',
      'accept authenticated = *',
      'defer message = 451 4.7.1 Service unavailable - try again later',
      'warn remove_header = X-Spam : X-Spam-Status : Authentication-Results',
      'deny condition = ${if eq{$spam_action}{reject}}',
      'defer condition = ${if eq{$spam_action}{soft reject}}',
      'warn condition = ${if match{$spam_report}{\\N(?m)^ ?Message: Authentication-Results: \\N}}',
      'warn condition = ${if match{$spam_report}{\\N(?m)^ ?Message: X-Spam-Status: \\N}}',
      'warn condition = ${if or{{eq{$spam_action}{add header}}{eq{$spam_action}{rewrite subject}}}}',
      'accept',
    ]);
    expect(data).toMatch(/^ {10}!spam = nobody:true\/defer_ok$/m);
    expect(data).toMatch(/^ {10}message = 554 5\.7\.1 \$\{if match\{\$spam_report\}.*\{Spam message rejected\}\}$/m);
  });

  it('Dovecot: LMTP runs the global junk script, which files X-Spam-Status: Yes in Junk', () => {
    const d = host();
    const conf = file(d, '/etc/dovecot/dovecot.conf');
    expect(conf).toMatch(/^protocol lmtp \{\n {2}mail_plugins = \$mail_plugins sieve\n/m);
    expect(conf).toMatch(/^plugin \{\n {2}sieve_before = \/var\/lib\/dovecot\/sieve\/junk\.sieve\n\}$/m);
    expect(conf).toMatch(/^ {2}mailbox Junk \{\n {4}special_use = \\Junk\n {4}auto = subscribe\n/m);
    expect(file(d, '/var/lib/dovecot/sieve/junk.sieve')).toMatch(/^if header :matches "X-Spam-Status" "Yes, \*" \{\n {2}fileinto :create "Junk";\n {2}stop;\n\}$/m);
    expect(d.directories).toContainEqual({ path: '/var/lib/dovecot/sieve', owner: 'vmail', group: 'vmail', mode: '0755', component: 'dovecot' });
  });

  for (const mta of ['postfix', 'exim'] as const) {
    it(`antispam: false (${mta}): no rspamd, no milter or spam ACL, no Sieve; rspamd's services and every file mailops wrote for it are retired`, () => {
      const d = host({ mta, antispam: false });
      expect(d.components).not.toContain('rspamd');
      expect(d.packages).not.toContain('rspamd');
      expect(d.ports.map((p) => p.port)).not.toContain(11332);
      const conf = mta === 'postfix' ? file(d, '/etc/postfix/main.cf') + file(d, '/etc/postfix/master.cf') : file(d, '/etc/exim4/exim4.conf');
      expect(conf).not.toMatch(/11332|11333|spamd_address|spam =|X-Spam/);
      if (mta === 'postfix') expect(setting(file(d, '/etc/postfix/main.cf'), 'smtpd_milters')).toEqual(['smtpd_milters = $mailops_signing_milters']);
      else expect(setting(conf, 'host_lookup')).toEqual(['host_lookup =']);
      expect(file(d, '/etc/dovecot/dovecot.conf')).not.toMatch(/sieve/);
      expect(d.files.map((f) => f.path)).not.toContain('/var/lib/dovecot/sieve/junk.sieve');
      const reason = 'retired by antispam: false (rspamd)';
      expect(d.retired.units.filter(antispamOnly)).toEqual([
        { unit: 'redis-server', component: 'rspamd', reason },
        { unit: 'rspamd', component: 'rspamd', reason },
      ]);
      expect(d.retired.files.filter(antispamOnly)).toEqual([
        { path: '/var/lib/dovecot/sieve/junk.sieve', component: 'dovecot', reason: 'retired by antispam: false (dovecot)' },
        { path: '/var/lib/dovecot/sieve/junk.svbin', component: 'dovecot', reason: 'retired by antispam: false (dovecot)' },
        ...RSPAMD_FILES.map((path) => ({ path, component: 'rspamd', reason })),
        { path: '/etc/systemd/system/rspamd.service.d/mailops.conf', component: 'rspamd', reason },
        { path: '/etc/systemd/system/redis-server.service.d/mailops.conf', component: 'rspamd', reason },
      ]);
    });
  }

  it('what another active component still runs or writes is not retired (a Redis that another feature uses stays)', () => {
    const other: ComponentSpec = { name: 'other', when: { antispam: false }, services: [{ key: 'redis', unit: 'redis-server' }] };
    const d = host({ antispam: false }, [...loadComponents(), other]);
    expect(d.services.map((x) => x.unit)).toContain('redis-server');
    expect(d.retired.units.filter(antispamOnly).map((x) => x.unit)).toEqual(['rspamd']);
  });

  it('dnsbl: every zone asked about port-25 clients, answers in 127/8 only, with Postfix reply text from both MTAs; none without it', () => {
    const zones = ['zen.spamhaus.org', 'bl.example.net'];
    expect(setting(file(host({ dnsbl: zones }), '/etc/postfix/main.cf'), 'smtpd_recipient_restrictions')).toEqual([
      'smtpd_recipient_restrictions = reject_non_fqdn_recipient, reject_rbl_client zen.spamhaus.org=127.[0..255].[0..255].[0..255], reject_rbl_client bl.example.net=127.[0..255].[0..255].[0..255], disabled_mailboxes, reject_unlisted_recipient, mailbox_quota, permit',
    ]);
    expect(setting(file(host(), '/etc/postfix/main.cf'), 'smtpd_recipient_restrictions')).toEqual(['smtpd_recipient_restrictions = reject_non_fqdn_recipient, disabled_mailboxes, reject_unlisted_recipient, mailbox_quota, permit']);
    // Submission keeps its own restrictions: no blocklist there.
    expect(file(host({ dnsbl: zones }), '/etc/postfix/master.cf')).not.toMatch(/rbl/);
    const exim = file(host({ mta: 'exim', dnsbl: zones }), '/etc/exim4/exim4.conf');
    expect(exim).toContain(
      [
        '  deny    domains = +local_domains',
        '          condition = ${if eq{$received_port}{25}}',
        '          !authenticated = *',
        '          dnslists = zen.spamhaus.org : bl.example.net',
        '          message = 554 5.7.1 Service unavailable; Client host [$sender_host_address] blocked using $dnslist_domain${if def:dnslist_text{; $dnslist_text}}',
      ].join('\n'),
    );
    expect(file(host({ mta: 'exim' }), '/etc/exim4/exim4.conf')).not.toMatch(/dnslists/);
  });
});

/** The facts of a host that looks exactly like `d`, plus what an earlier apply with antispam on left. */
function factsOf(d: DesiredHost, left: { files?: string[]; units?: Record<string, { enabled: string; active: string }> } = {}): HostFacts {
  const f: HostFacts = { family: d.os.family, osName: 'Debian GNU/Linux 12 (bookworm)', osVersion: '12', packages: {}, files: {}, directories: {}, services: {}, users: {}, groups: {}, dkim: {}, commandsDone: d.commands.map((_, i) => i), locked: false, queues: {} };
  for (const p of d.packages) f.packages[p] = '1.0';
  for (const u of d.users) f.users[u.name] = { uid: u.uid ?? 999, gid: u.uid ?? 999, home: u.home };
  for (const x of d.directories) f.directories[x.path] = { mode: x.mode, owner: x.owner, group: x.group };
  for (const x of d.files) f.files[x.path] = { sha256: sha256(x.content), mode: x.mode, owner: x.owner, group: x.group };
  for (const s of d.services) f.services[s.unit] = { enabled: 'enabled', active: 'active' };
  for (const p of left.files ?? []) f.files[p] = { sha256: sha256(p), mode: '644', owner: 'root', group: 'root' };
  Object.assign(f.services, left.units ?? {});
  return f;
}

describe('inbound protection, planned', () => {
  const off = host({ antispam: false });
  const leftFiles = [...RSPAMD_FILES, '/var/lib/dovecot/sieve/junk.sieve'];
  const dropIn = '/etc/systemd/system/redis-server.service.d/mailops.conf';
  const running = { rspamd: { enabled: 'enabled', active: 'active' }, 'redis-server': { enabled: 'enabled', active: 'active' } };

  it('turning antispam off removes the files mailops wrote and stops and disables rspamd and Redis', () => {
    const p = plan(off, factsOf(off, { files: leftFiles, units: running }));
    const reason = 'retired by antispam: false (rspamd)';
    expect(p.changes).toEqual([
      { kind: 'file', action: 'remove', path: '/var/lib/dovecot/sieve/junk.sieve', component: 'dovecot', reason: 'retired by antispam: false (dovecot)' },
      ...RSPAMD_FILES.map((path) => ({ kind: 'file', action: 'remove', path, component: 'rspamd', reason })),
      { kind: 'service', action: 'stop-disable', unit: 'redis-server', key: 'redis-server', reason },
      { kind: 'service', action: 'stop-disable', unit: 'rspamd', key: 'rspamd', reason },
    ]);
    expect(formatPlan(p, false).split('\n')).toEqual(expect.arrayContaining(['  - file /etc/rspamd/rspamd.local.lua (retired by antispam: false (rspamd))', '  ↻ service rspamd: stop-disable (retired by antispam: false (rspamd))']));
  });

  it('a host that never ran rspamd, or where it is already gone, has nothing to retire', () => {
    expect(plan(off, factsOf(off)).changes).toEqual([]);
    expect(plan(off, factsOf(off, { units: { rspamd: { enabled: 'disabled', active: 'inactive' }, 'redis-server': { enabled: 'not-found', active: 'inactive' } } })).changes).toEqual([]);
  });

  it('the activation backs up and removes the files, reloads the MTA before rspamd stops, and a rollback brings rspamd back', () => {
    const facts = factsOf(off, { files: [...leftFiles, dropIn], units: running });
    const main = off.files.find((f) => f.path === '/etc/postfix/main.cf')!;
    facts.files[main.path] = { ...facts.files[main.path]!, sha256: sha256('the main.cf with the rspamd milter') };
    const p = plan(off, facts);
    const script = activationScript({ desired: off, facts, plan: p, digest: 'abc' });
    expect(spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' }).status).toBe(0);
    const at = (needle: string) => {
      const i = script.indexOf(needle);
      expect(i, needle).toBeGreaterThanOrEqual(0);
      return i;
    };
    // Backed up before anything is removed (the rollback restores from the backup).
    expect(at('cp -p /etc/rspamd/rspamd.local.lua "$BACKUP"/etc/rspamd/rspamd.local.lua')).toBeLessThan(at('rm -f /etc/rspamd/rspamd.local.lua 2>>"$LOG" || SWAPFAIL=/etc/rspamd/rspamd.local.lua'));
    // The drift check covers removed files too.
    expect(script).toContain(`[ "$(sha256sum < /etc/rspamd/rspamd.local.lua 2>/dev/null | cut -c1-64)" = ${sha256('/etc/rspamd/rspamd.local.lua')} ] || drift=/etc/rspamd/rspamd.local.lua`);
    expect(at('step service reload postfix.service')).toBeLessThan(at('step service stop rspamd.service'));
    expect(at('step service stop rspamd.service')).toBeLessThan(at('phase checking'));
    // Removing the Redis drop-in is a unit change systemd must read.
    expect(at('rm -f /etc/systemd/system/redis-server.service.d/mailops.conf')).toBeLessThan(at('systemctl daemon-reload\n'));
    expect(script).toMatch(/^ {2}systemctl enable rspamd\.service >\/dev\/null 2>&1$/m);
    expect(script).toMatch(/^ {2}systemctl restart rspamd\.service >\/dev\/null 2>&1$/m);
  });
});

describe('what a feature turned off leaves behind: nothing that runs, no secret', () => {
  const ED25519 = ['/etc/opendkim/ed25519.conf', '/etc/opendkim/KeyTable.ed25519', '/etc/opendkim/SigningTable.ed25519', '/etc/systemd/system/opendkim-ed25519.service'];
  const TABLES = ['/etc/opendkim/KeyTable', '/etc/opendkim/SigningTable', '/etc/opendkim/TrustedHosts', ...ED25519];
  const retired = (d: DesiredHost) => ({
    units: d.retired.units.filter((x) => x.component === 'opendkim').map((x) => `${x.unit}: ${x.reason}`),
    files: d.retired.files.filter((x) => x.component === 'opendkim').map((x) => x.path),
  });

  it('Exim signs by itself: both daemons and the tables are retired, the package\'s own opendkim.conf stays', () => {
    const d = host({ mta: 'exim' });
    expect(d.components).not.toContain('opendkim');
    expect(retired(d)).toEqual({ units: ['opendkim: retired by mta: exim (opendkim)', 'opendkim-ed25519: retired by mta: exim (opendkim)'], files: TABLES });
    expect(d.retired.files.map((x) => x.path)).not.toContain('/etc/opendkim.conf');
  });

  it('a Postfix whose domains have no DKIM key: the same; with RSA keys only, the Ed25519 daemon alone', () => {
    expect(retired(host({ dkim: false }))).toEqual({ units: ['opendkim: retired by dkim: false (opendkim)', 'opendkim-ed25519: retired by dkim: false (opendkim)'], files: TABLES });
    const rsaOnly = host();
    expect(rsaOnly.services.map((s) => s.unit)).toContain('opendkim');
    expect(retired(rsaOnly)).toEqual({ units: ['opendkim-ed25519: retired by dkim_ed25519: false (opendkim)'], files: ED25519 });
  });

  it('a host switched from Postfix to Exim: OpenDKIM is stopped and disabled after the MTAs, and mailops\' tables removed', () => {
    const d = host({ mta: 'exim' });
    const running = { enabled: 'enabled', active: 'active' };
    const p = plan(d, factsOf(d, { files: TABLES.slice(0, 3), units: { postfix: running, opendkim: running, 'opendkim-ed25519': { enabled: 'not-found', active: 'inactive' } } }));
    const reason = 'retired by mta: exim (opendkim)';
    expect(p.changes.filter((c) => c.kind === 'file' || c.kind === 'service')).toEqual([
      ...TABLES.slice(0, 3).map((path) => ({ kind: 'file', action: 'remove', path, component: 'opendkim', reason })),
      { kind: 'service', action: 'stop-disable', unit: 'postfix', key: 'postfix', reason: 'exim replaces it' },
      { kind: 'service', action: 'stop-disable', unit: 'opendkim', key: 'opendkim', reason },
    ]);
    const script = activationScript({ desired: d, facts: factsOf(d), plan: p, digest: 'abc' });
    expect(script.indexOf('step service stop postfix')).toBeLessThan(script.indexOf('step service stop opendkim'));
  });

  const retiredOf = (d: DesiredHost, component: string) => ({
    units: d.retired.units.filter((x) => x.component === component).map((x) => `${x.unit}: ${x.reason}`),
    files: d.retired.files.filter((x) => x.component === component).map((x) => `${x.path}: ${x.reason}`),
  });
  const RELAY = ['  relay: { host: smtp.relay.example, port: 587, username: u, password: { env: MAILOPS_BOB_PASSWORD } }'];

  it('the smarthost\'s login is removed from the disk once no MTA uses it: relay off, or the other MTA now', () => {
    expect(host({ stack: RELAY }).files.map((f) => f.path)).toContain('/etc/postfix/relay_password');
    expect(host({ stack: RELAY }).retired.files.map((x) => x.path)).toEqual(expect.arrayContaining(['/etc/exim4/relay_login']));
    expect(host({ stack: RELAY }).retired.files.map((x) => x.path)).not.toContain('/etc/postfix/relay_password');
    expect(retiredOf(host(), 'postfix').files).toEqual(['/etc/postfix/relay_password: retired by relay: false (postfix)']);
    expect(retiredOf(host({ mta: 'exim', stack: RELAY }), 'postfix').files).toEqual(['/etc/postfix/relay_password: retired by mta: exim (postfix)']);
    expect(retiredOf(host({ mta: 'exim', stack: RELAY }), 'exim').files).toEqual([]);
    expect(retiredOf(host({ mta: 'exim' }), 'exim').files).toEqual(['/etc/exim4/relay_login: retired by relay: false (exim)']);
    expect(retiredOf(host({ stack: RELAY }), 'exim').files).toEqual(['/etc/exim4/relay_login: retired by mta: postfix (exim)']);
  });

  it('no send_limit any more: policyd-rate-limit is stopped and disabled (its package and configuration stay); on Exim it is stopped once, as replaced', () => {
    expect(host({ sendLimit: '100/hour' }).services.map((s) => s.unit)).toContain('policyd-rate-limit');
    expect(retiredOf(host({ sendLimit: '100/hour' }), 'ratelimit')).toEqual({ units: [], files: [] });
    expect(retiredOf(host(), 'ratelimit')).toEqual({ units: ['policyd-rate-limit: retired by send_limits: false (ratelimit)'], files: [] });
    const exim = host({ mta: 'exim' });
    expect(exim.replaces.map((x) => x.unit)).toContain('policyd-rate-limit');
    expect(exim.retired.units.map((x) => x.unit)).not.toContain('policyd-rate-limit');
    const running = { enabled: 'enabled', active: 'active' };
    const p = plan(exim, factsOf(exim, { units: { 'policyd-rate-limit': running } }));
    expect(p.changes.filter((c) => c.kind === 'service' && c.unit === 'policyd-rate-limit')).toEqual([{ kind: 'service', action: 'stop-disable', unit: 'policyd-rate-limit', key: 'policyd-rate-limit', reason: 'exim replaces it' }]);
  });

  it('firewall: false on Debian: mailops\' table goes with its service (whose ExecStop deletes it), the rules are removed, the unit file stays', () => {
    expect(retiredOf(host(), 'firewall')).toEqual({ units: [], files: [] });
    const off = host({ stack: ['  firewall: false'] });
    const reason = 'retired by firewall_on: false, os: debian (firewall)';
    expect(retiredOf(off, 'firewall')).toEqual({ units: [`mailops-firewall: ${reason}`], files: [`/etc/mailops/firewall.nft: ${reason}`, `/etc/mailops/firewall.sh: ${reason}`] });
    const p = plan(off, factsOf(off, { files: ['/etc/mailops/firewall.nft', '/etc/mailops/firewall.sh', '/etc/systemd/system/mailops-firewall.service'], units: { 'mailops-firewall': { enabled: 'enabled', active: 'active' } } }));
    expect(p.changes.filter((c) => c.kind === 'file' || c.kind === 'service').map((c) => `${c.action} ${'path' in c ? c.path : c.unit}`)).toEqual(['remove /etc/mailops/firewall.nft', 'remove /etc/mailops/firewall.sh', 'stop-disable mailops-firewall']);
    expect(retiredOf(host({ stack: ['  firewall: false'], family: 'rhel' }), 'firewall')).toEqual({ units: [], files: [] });
  });
});
