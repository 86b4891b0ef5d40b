/**
 * Dovecot 2.4 (Debian 13 and later): which hosts have it, what they are rendered, and how plan finds out
 * from the facts (a host is rendered for the generation the state recorded, and again for the one it has).
 */
import { describe, expect, it } from 'vitest';
import { planSite, recordDkim } from '../../src/apply/site.js';
import { parseFacts } from '../../src/facts/parse.js';
import { factScript } from '../../src/facts/script.js';
import type { Connection } from '../../src/ssh/connection.js';
import { dovecotOf, dovecotOfVersion } from '../../src/os/index.js';
import { renderHosts, renderSite } from '../../src/render/site.js';
import { loadSite } from '../../src/site/load.js';
import { emptyState } from '../../src/state/state.js';
import { fileOf, site as hostsSite } from './support/hosts-site.js';
import { convergedFacts } from './support/facts.js';
import { plan } from '../../src/plan/plan.js';
import type { DesiredHost } from '../../src/model/desired.js';

process.env['MAILOPS_BOB_PASSWORD'] = 'dovecot-test-password';
const contract = () => loadSite(new URL('../../playbooks/examples/contract.yaml', import.meta.url).pathname).site;

describe('the Dovecot of a release', () => {
  it('is 2.4 from Debian 13, Ubuntu 25.04 and Fedora 42 on (and on Debian testing/unstable, which have no VERSION_ID)', () => {
    const cases: Array<[string, string, '2.3' | '2.4']> = [
      ['debian', '12', '2.3'],
      ['debian', '13', '2.4'],
      ['debian', '14', '2.4'],
      ['debian', '', '2.4'],
      ['ubuntu', '22.04', '2.3'],
      ['ubuntu', '24.04', '2.3'],
      ['ubuntu', '24.10', '2.3'],
      ['ubuntu', '25.04', '2.4'],
      ['ubuntu', '26.04', '2.4'],
      ['fedora', '41', '2.3'],
      ['fedora', '42', '2.4'],
      ['rocky', '9.4', '2.3'],
      ['almalinux', '9.5', '2.3'],
      ['centos', '9', '2.3'],
      ['linuxmint', '22', '2.3'],
    ];
    for (const [id, versionId, want] of cases) expect(`${id} ${versionId}: ${dovecotOf({ id, versionId })}`).toBe(`${id} ${versionId}: ${want}`);
  });

  it('is the installed package’s when Dovecot is installed (a host upgraded in place, a backport)', () => {
    expect(dovecotOf({ id: 'debian', versionId: '13', installed: '1:2.3.19.1+dfsg1-2.1+deb12u1' })).toBe('2.3');
    expect(dovecotOf({ id: 'debian', versionId: '12', installed: '1:2.4.1+dfsg1-6+deb13u7' })).toBe('2.4');
    expect(dovecotOf({ id: 'rocky', versionId: '9.4', installed: '2.3.16-14.el9' })).toBe('2.3');
    expect(dovecotOfVersion('2.4.2-1.fc43')).toBe('2.4');
    expect(dovecotOfVersion('3.0.0')).toBe('2.4');
    expect(dovecotOfVersion('not a version')).toBeUndefined();
  });

  it('else the one apt would install (a derivative the release table does not know, a release newer than it)', () => {
    expect(dovecotOf({ id: 'linuxmint', versionId: '23', candidate: '1:2.4.1+dfsg1-6' })).toBe('2.4');
    expect(dovecotOf({ id: 'debian', versionId: '13', candidate: '1:2.3.21+dfsg1-3' })).toBe('2.3');
    // Installed beats candidate: a host whose dovecot-core waits for an upgrade keeps what runs.
    expect(dovecotOf({ id: 'debian', versionId: '13', installed: '1:2.3.19.1+dfsg1-2.1', candidate: '1:2.4.1+dfsg1-6' })).toBe('2.3');
  });

  it('the fact script asks apt for the candidate only on a Debian-family mailbox host without Dovecot; parseFacts keeps it', () => {
    const s = contract();
    const [deb] = renderHosts(s, { detectedOs: new Map([['mx1', 'debian']]) });
    const [rhel] = renderHosts(s, { detectedOs: new Map([['mx1', 'rhel']]) });
    expect(factScript({ debian: deb! })).toContain(`[ -e /usr/sbin/dovecot ] || apt-cache policy dovecot-core 2>/dev/null | while read -r k v; do [ "$k" = Candidate: ] && printf '%s\\n' "$v"; done`);
    expect(factScript({ rhel: rhel! })).not.toContain('apt-cache');
    const out = (v: string) => ['@@mailops family', 'debian', '@@mailops dovecot', v, '@@mailops end', ''].join('\n');
    expect(parseFacts(out('1:2.4.1+dfsg1-6+deb13u7')).dovecotCandidate).toBe('1:2.4.1+dfsg1-6+deb13u7');
    expect(parseFacts(out('(none)')).dovecotCandidate).toBeUndefined();
  });

  it('the fact script reports ID with the rest of os-release, and parseFacts keeps it', () => {
    const f = parseFacts(['@@mailops os', 'ID="debian"', 'NAME="Debian GNU/Linux"', 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"', 'VERSION_ID="13"', '@@mailops family', 'debian', '@@mailops end', ''].join('\n'));
    expect(f).toMatchObject({ family: 'debian', osId: 'debian', osVersion: '13', osName: 'Debian GNU/Linux 13 (trixie)' });
  });
});

describe('a host with Dovecot 2.4', () => {
  const s = contract();
  const [d23] = renderHosts(s, { detectedOs: new Map([['mx1', 'debian']]) });
  const [d24] = renderHosts(s, { detectedOs: new Map([['mx1', { family: 'debian', dovecot: '2.4' }]]) });

  it('gets dovecot.conf in 2.4’s syntax, its version settings first', () => {
    const conf = fileOf(d24!, '/etc/dovecot/dovecot.conf')!.content;
    const settings = conf.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    expect(settings.slice(0, 2)).toEqual(['dovecot_config_version = 2.4.0', 'dovecot_storage_version = 2.4.0']);
    expect(conf).toContain('ssl_server_cert_file = /etc/mailops/tls/mail.example.com.crt\n');
    expect(conf).toContain('passdb users {\n  driver = passwd-file\n  passwd_file_path = /etc/dovecot/users\n  default_password_scheme = SHA512-CRYPT\n}\n');
    expect(conf).toContain('passdb disabled {\n  driver = passwd-file\n  passwd_file_path = /etc/dovecot/disabled\n  deny = yes\n');
    expect(conf).toContain('home:default = /var/vmail/%{user | domain | lower}/%{user | username | lower}\n');
    expect(conf).toContain('quota "User quota" {\n  driver = count\n}\n');
    expect(conf).toContain('sieve_script junk {\n  type = before\n  path = /var/lib/dovecot/sieve/junk.sieve\n}\n');
    // Nothing of 2.3's syntax is left.
    for (const old of ['mail_location', 'ssl_cert =', 'disable_plaintext_auth', '%Lu', '%Ld', 'plugin {', 'args =', 'default_fields', 'sieve_before', 'quota_rule']) expect(conf, old).not.toContain(old);
  });

  it('every other file but dovecot.conf and the users file is the one a 2.3 host gets', () => {
    const files = (d: typeof d23) => new Map(d!.files.map((f) => [f.path, f.content]));
    const [a, b] = [files(d23), files(d24)];
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a.keys()].filter((p) => a.get(p) !== b.get(p)).sort()).toEqual(['/etc/dovecot/dovecot.conf', '/etc/dovecot/users']);
    expect(d24!.packages).toEqual(d23!.packages);
  });

  it('its users file sets each quota as quota_storage_size in bytes (2.3: quota_rule), with 2.3\'s grace of 10% (2.4 would allow 10M past any quota)', () => {
    expect(fileOf(d23!, '/etc/dovecot/users')!.content).toMatch(/:userdb_quota_rule=\*:storage=2G$/m);
    expect(fileOf(d24!, '/etc/dovecot/users')!.content).toMatch(/:userdb_quota_storage_size=2147483648 userdb_quota_storage_grace=214748364$/m);
  });

  it('replicates without a replicator: doveadm listens over TLS, and replica.sh watch (mailops-replica-push, on both mailbox hosts) pushes the changes; so does a 2.3 host whose peer has 2.4', () => {
    const replicated = loadSite(hostsSite({ roles: ['mailbox', 'mailbox', 'backup-mx'], replication: true })).site;
    const render = (host: string, dovecot: '2.3' | '2.4') => renderHosts(replicated, { hosts: [host], detectedOs: new Map([[host, { family: 'debian', dovecot }]]) })[0]!;
    for (const host of ['mx1', 'mx2']) {
      const d = render(host, '2.4');
      const conf = fileOf(d, '/etc/dovecot/dovecot.conf')!.content;
      expect(conf).toContain('service doveadm {\n  inet_listener doveadm {\n    port = 12345\n    ssl = yes\n  }\n}\ndoveadm_port = 12345\n');
      expect(conf).toMatch(/^!include replication\.conf$/m);
      // Nothing of 2.3's replicator, which 2.4 would refuse.
      expect(conf).not.toMatch(/service replicator|mail_replica|replication_|notify replication/);
      expect(fileOf(d, '/etc/mailops/replica.sh')!.content).toMatch(/^MODE=push$/m);
      expect(fileOf(d, '/etc/systemd/system/mailops-replica-push.service')!.content).toMatch(/^ExecStart=\/etc\/mailops\/replica\.sh watch$/m);
      expect(d.services.map((s) => s.unit)).toContain('mailops-replica-push');
      // 2.3: the replicator pushes; the push service only hands it the users whose mailboxes changed.
      const d23 = render(host, '2.3');
      expect(fileOf(d23, '/etc/systemd/system/mailops-replica-push.service')!.content).toMatch(/^ExecStart=\/etc\/mailops\/replica\.sh watch$/m);
      expect(d23.services.map((s) => s.unit)).toContain('mailops-replica-push');
      expect(d23.retired.units.map((u) => u.unit)).not.toContain('mailops-replica-push');
      expect(fileOf(d23, '/etc/mailops/replica.sh')!.content).toMatch(/^MODE=replicator$/m);
      // A 2.3 host whose peer the state recorded with 2.4 (a pair upgraded one host at a time): 2.4 refuses what
      // its replicator would ask (dsync-server -U), so it pushes as a 2.4 host does, with 2.3's syntax.
      const peer = host === 'mx1' ? 'mx2' : 'mx1';
      const mixed = renderHosts(replicated, { hosts: [host], detectedOs: new Map([[host, { family: 'debian', dovecot: '2.3' }]]), dovecots: { [peer]: '2.4' } })[0]!;
      const mconf = fileOf(mixed, '/etc/dovecot/dovecot.conf')!.content;
      expect(mconf).not.toMatch(/service replicator|mail_replica|replication_|notify replication/);
      expect(mconf).toContain('service doveadm {\n  inet_listener {\n    port = 12345\n    ssl = yes\n  }\n}\ndoveadm_port = 12345\n');
      expect(mconf).toMatch(/^mail_plugins = \$mail_plugins quota$/m);
      expect(fileOf(mixed, '/etc/mailops/replica.sh')!.content).toMatch(/^MODE=push$/m);
      expect(mixed.services.map((s) => s.unit)).toContain('mailops-replica-push');
      expect(mixed.retired.units.map((u) => u.unit)).not.toContain('mailops-replica-push');
      // Its peer recorded with 2.3: the replicator, as before.
      const both23 = renderHosts(replicated, { hosts: [host], detectedOs: new Map([[host, { family: 'debian', dovecot: '2.3' }]]), dovecots: { [peer]: '2.3' } })[0]!;
      expect(fileOf(both23, '/etc/dovecot/dovecot.conf')!.content).toBe(fileOf(d23, '/etc/dovecot/dovecot.conf')!.content);
    }
    // The backup MX has no Dovecot: nothing of it.
    expect(fileOf(render('mx3', '2.4'), '/etc/systemd/system/mailops-replica-push.service')).toBeUndefined();
    // Every notification names a service that runs on the host (replica.sh notifies the push, which runs on 2.4
    // only): plan would stop at a changed replica.sh on a 2.3 host otherwise.
    for (const host of ['mx1', 'mx2', 'mx3']) {
      for (const gen of ['2.3', '2.4'] as const) {
        const d = render(host, gen);
        const keys = new Set(d.services.map((s) => s.key));
        const notified = [...d.files, ...d.commands].flatMap((x) => x.notify.map((n) => n.trim().split(/\s+/)[1]!));
        expect(`${host} ${gen}: ${notified.filter((k) => !keys.has(k)).join(' ')}`).toBe(`${host} ${gen}: `);
        expect(() => plan(d, { ...convergedFacts(d), files: {} })).not.toThrow();
      }
    }
  });

  it('render (no host) renders what the state recorded of the host', () => {
    const rendered = renderSite(s, { ...emptyState(), dovecot: { mx1: '2.4' } });
    expect(fileOf(rendered.hosts[0]!, '/etc/dovecot/dovecot.conf')!.content).toMatch(/^dovecot_config_version = 2\.4\.0$/m);
    expect(fileOf(renderSite(s, emptyState()).hosts[0]!, '/etc/dovecot/dovecot.conf')!.content).not.toContain('dovecot_config_version');
  });
});

describe('plan finds the generation in the facts', () => {
  /** A host that answers the fact script as a fresh Debian of this release (nothing of the stack installed). */
  function freshHost(versionId: string, candidate?: string): Connection & { scripts: string[] } {
    const scripts: string[] = [];
    return {
      host: 'mx1',
      roundTrips: 0,
      scripts,
      async exec(command: string) {
        scripts.push(command);
        const os = ['@@mailops os', 'ID="debian"', 'NAME="Debian GNU/Linux"', `PRETTY_NAME="Debian GNU/Linux ${versionId}"`, `VERSION_ID="${versionId}"`];
        const asked = candidate && command.includes('apt-cache policy dovecot-core') ? ['@@mailops dovecot', candidate] : [];
        return { code: 0, stdout: [...os, '@@mailops family', 'debian', ...asked, '@@mailops end', ''].join('\n'), stderr: '' };
      },
      async close() {},
    };
  }
  const run = async (versionId: string, state = emptyState(), candidate?: string) => {
    const conn = freshHost(versionId, candidate);
    const s = contract();
    const [r] = await planSite(s, { target: (h) => ({ name: h.name, address: '192.0.2.1', port: 22, user: 'root', knownHostsFile: '/dev/null', acceptNew: false }), connect: async () => conn, progress: () => {}, state });
    expect(r!.error).toBeUndefined();
    return { planned: r!.planned!, conn, site: s };
  };

  it('a Debian 13 host the state knows nothing of: rendered for 2.3 first, then again for 2.4, and the state records it', async () => {
    const { planned, site } = await run('13');
    expect(planned.desired.os.dovecot).toBe('2.4');
    expect(planned.plan.dovecot).toBe('2.4');
    expect(planned.desired.files.find((f) => f.path === '/etc/dovecot/dovecot.conf')!.content).toMatch(/^dovecot_config_version = 2\.4\.0$/m);
    const next = recordDkim(emptyState(), [{ name: 'mx1', ok: true, changes: 1, plan: planned.plan }], site);
    expect(next.dovecot).toEqual({ mx1: '2.4' });
    // The next run starts from what the state recorded: one render, and the facts gathered once.
    const again = await run('13', next);
    expect(again.planned.desired.os.dovecot).toBe('2.4');
    expect(again.conn.scripts).toHaveLength(1);
  });

  it('a Debian 12 host stays on 2.3; a host the state says had 2.4 but now has 2.3 (rebuilt) is rendered for 2.3', async () => {
    expect((await run('12')).planned.desired.os.dovecot).toBe('2.3');
    const rebuilt = await run('12', { ...emptyState(), dovecot: { mx1: '2.4' } });
    expect(rebuilt.planned.desired.os.dovecot).toBe('2.3');
    expect(rebuilt.planned.plan.dovecot).toBe('2.3');
  });

  it('a host whose apt would install Dovecot 2.4 gets 2.4, whatever its VERSION_ID says', async () => {
    expect((await run('12', emptyState(), '1:2.4.1+dfsg1-6')).planned.desired.os.dovecot).toBe('2.4');
    expect((await run('13', emptyState(), '1:2.3.21+dfsg1-3')).planned.desired.os.dovecot).toBe('2.3');
  });
});

describe('a replicated pair whose one host was upgraded', () => {
  /** A host whose facts say this Debian release with Dovecot installed at this version. */
  const host = (name: string, versionId: string, dovecot: string, delayMs = 0): Connection => ({
    host: name,
    roundTrips: 0,
    async exec() {
      await new Promise((r) => setTimeout(r, delayMs));
      const os = ['@@mailops os', 'ID="debian"', 'NAME="Debian GNU/Linux"', `PRETTY_NAME="Debian GNU/Linux ${versionId}"`, `VERSION_ID="${versionId}"`];
      return { code: 0, stdout: [...os, '@@mailops family', 'debian', '@@mailops packages', `dovecot-core\t${dovecot}`, '@@mailops end', ''].join('\n'), stderr: '' };
    },
    async close() {},
  });
  const site = () => loadSite(hostsSite({ roles: ['mailbox', 'mailbox'], replication: true })).site;
  const planPair = async (hosts: Record<string, Connection>, state = { ...emptyState(), dovecot: { mx1: '2.3', mx2: '2.3' } as Record<string, '2.3' | '2.4'> }, only?: string[]) => {
    const r = await planSite(site(), { target: (h) => ({ name: h.name, address: '192.0.2.1', port: 22, user: 'root', knownHostsFile: '/dev/null', acceptNew: false }), connect: async (t) => hosts[t.name]!, progress: () => {}, state, ...(only ? { hosts: only } : {}) });
    for (const x of r) expect(x.error).toBeUndefined();
    return Object.fromEntries(r.map((x) => [x.host.name, x.planned!.desired]));
  };
  const mode = (d: DesiredHost) => /^MODE=(\S+)$/m.exec(fileOf(d, '/etc/mailops/replica.sh')!.content)?.[1];

  it('the host still on Debian 12 pushes in the same run in which the other turned out to have Dovecot 2.4 (the state recorded 2.3 for both), whichever answers first', async () => {
    for (const [d1, d2] of [[0, 30], [30, 0]]) {
      const d = await planPair({ mx1: host('mx1', '12', '1:2.3.19.1+dfsg1-2.1+deb12u1', d1), mx2: host('mx2', '13', '1:2.4.1+dfsg1-6+deb13u7', d2) });
      expect(d['mx2']!.os.dovecot).toBe('2.4');
      expect(d['mx1']!.os.dovecot).toBe('2.3');
      expect(mode(d['mx1']!)).toBe('push');
      expect(mode(d['mx2']!)).toBe('push');
      expect(d['mx1']!.services.map((s) => s.unit)).toContain('mailops-replica-push');
    }
  });

  it('both on Debian 12: the replicator; planned alone (--host), a host goes by what the state recorded of its peer', async () => {
    const both = await planPair({ mx1: host('mx1', '12', '1:2.3.19.1+dfsg1-2.1+deb12u1'), mx2: host('mx2', '12', '1:2.3.19.1+dfsg1-2.1+deb12u1') });
    expect([mode(both['mx1']!), mode(both['mx2']!)]).toEqual(['replicator', 'replicator']);
    const alone = await planPair({ mx1: host('mx1', '12', '1:2.3.19.1+dfsg1-2.1+deb12u1') }, { ...emptyState(), dovecot: { mx1: '2.3', mx2: '2.4' } }, ['mx1']);
    expect(mode(alone['mx1']!)).toBe('push');
  });

  it('a peer that cannot be reached: the state says its Dovecot, and the other host is planned all the same', async () => {
    const down: Connection = { host: 'mx2', roundTrips: 0, exec: async () => Promise.reject(new Error('connection refused')), close: async () => {} };
    const r = await planSite(site(), { target: (h) => ({ name: h.name, address: '192.0.2.1', port: 22, user: 'root', knownHostsFile: '/dev/null', acceptNew: false }), connect: async (t) => (t.name === 'mx1' ? host('mx1', '12', '1:2.3.19.1+dfsg1-2.1+deb12u1') : down), progress: () => {}, state: { ...emptyState(), dovecot: { mx1: '2.3', mx2: '2.4' } } });
    expect(r.find((x) => x.host.name === 'mx2')!.error).toMatch(/connection refused/);
    expect(mode(r.find((x) => x.host.name === 'mx1')!.planned!.desired)).toBe('push');
  });
});
