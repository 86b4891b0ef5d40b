/**
 * Replication (stack.replication) rendered from plain data: what each of the two mailbox hosts gets, the
 * secret that no other file holds, and the rules of replica.sh run by the real shell and awk on plain files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSite } from '../../src/site/load.js';
import { renderHosts } from '../../src/render/site.js';
import { activationScript } from '../../src/apply/script.js';
import { plan } from '../../src/plan/plan.js';
import type { DesiredHost } from '../../src/model/desired.js';
import { fileOf, render, site } from './support/hosts-site.js';
import { convergedFacts } from './support/facts.js';

const FP1 = 'a'.repeat(64);
const FP2 = 'b'.repeat(64);
const replicated = () => site({ roles: ['mailbox', 'mailbox', 'backup-mx'], replication: true });
const pinned = () => renderHosts(loadSite(replicated()).site, { tls: { 'mx1.example.com': FP1, 'mx2.example.com': FP2 } });
const script = (h: ReturnType<typeof pinned>[number]) => fileOf(h, '/etc/mailops/replica.sh')!.content;

describe('replication between two mailbox hosts', () => {
  it('each mailbox host: the replicator, doveadm over TLS on 12345 for the other host only, the shared password in a root-only file', () => {
    const [a, b, backup] = pinned();
    const conf = fileOf(a!, '/etc/dovecot/dovecot.conf')!.content;
    expect(conf).toMatch(/^mail_plugins = \$mail_plugins quota notify replication$/m);
    expect(conf).toContain('service doveadm {\n  inet_listener {\n    port = 12345\n    ssl = yes\n  }\n}\n');
    expect(conf).toContain('  mail_replica = tcps:mx2.example.com:12345\n');
    // A stalled sync gives up after 30 s of silence, not dsync's 10 minutes, which hold the user's lock.
    expect(conf).toMatch(/^replication_dsync_parameters = -d -N -l 30 -U -T 30$/m);
    // The users' own expunges (IMAP, POP3) are logged, for mailops-replica-push to hand the replicator.
    expect(conf).toMatch(/^protocol imap \{\n  mail_plugins = \$mail_plugins imap_quota mail_log\n\}$/m);
    expect(conf).toMatch(/^protocol pop3 \{\n  pop3_uidl_format = \S+\n  mail_plugins = \$mail_plugins mail_log\n\}$/m);
    expect(conf).toContain('  mail_log_events = expunge\n  mail_log_fields = uid box\n');
    expect(fileOf(b!, '/etc/dovecot/dovecot.conf')!.content).toContain('  mail_replica = tcps:mx1.example.com:12345\n');
    expect(conf).toMatch(/^ssl_client_ca_file = \/etc\/dovecot\/replica-peer\.pem$/m);
    const secret = fileOf(a!, '/etc/dovecot/replication.conf')!;
    expect(secret).toMatchObject({ secret: true, owner: 'root', group: 'root', mode: '0600' });
    const password = /^doveadm_password = (\S+)$/m.exec(secret.content)![1]!;
    expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fileOf(b!, '/etc/dovecot/replication.conf')!.content).toBe(secret.content.replace('mx2.example.com', 'mx1.example.com'));
    for (const h of [a!, b!, backup!]) expect(h.files.filter((f) => f.content.includes(password)).map((f) => f.path)).toEqual(h === backup ? [] : ['/etc/dovecot/replication.conf']);
    expect(fileOf(a!, '/etc/mailops/firewall.nft')!.content).toContain('    ip saddr 203.0.113.11 tcp dport 12345 accept\n');
    expect(fileOf(a!, '/etc/mailops/firewall.nft')!.content).not.toMatch(/dport \{[^}]*12345/);
    expect(a!.ports.find((p) => p.port === 12345)).toMatchObject({ listen: true });
    // A backup MX has no Dovecot: nothing of replication.
    expect(backup!.files.filter((f) => /replica|dovecot/.test(f.path))).toEqual([]);
  });

  it('the first host trusts the second one\'s recorded certificate and seeds new users; only the second one adopts GUIDs and has the timer', () => {
    const [a, b] = pinned();
    const names = (h: typeof a) => h!.commands.filter((c) => c.component === 'replication').map((c) => `${c.phase}: ${c.name}`);
    expect(names(a)).toEqual(['running: trust the certificate of mx2.example.com for replication', 'running: folders of new users taken from mx2.example.com with their mail, or made with the GUIDs both mailbox hosts give them']);
    expect(names(b)).toEqual([
      'running: trust the certificate of mx1.example.com for replication',
      'running: folders of new users taken from mx1.example.com with their mail, or made with the GUIDs both mailbox hosts give them',
      'running: mailboxes made apart here and on mx1.example.com take its GUIDs',
    ]);
    expect(script(a)).toContain(`\nPEER='mx2.example.com'\nPORT=12345\nCA='/etc/dovecot/replica-peer.pem'\nFINGERPRINT='${FP2}'\n`);
    expect(script(b)).toContain(`\nFINGERPRINT='${FP1}'\n`);
    expect(fileOf(a!, '/etc/mailops/replica.sh')).toMatchObject({ owner: 'root', mode: '0700' });
    expect(a!.services.map((s) => s.unit)).not.toContain('mailops-replica.timer');
    expect(b!.services.find((s) => s.unit === 'mailops-replica.timer')).toMatchObject({ key: 'mailops-replica', component: 'replication' });
    expect(fileOf(b!, '/etc/systemd/system/mailops-replica.service')!.content).toContain('ExecStart=/etc/mailops/replica.sh heal\n');
    expect(fileOf(b!, '/etc/systemd/system/mailops-replica.timer')!.content).toContain('OnUnitActiveSec=1min\n');
    // The first host never retires what it does not have; the second would retire nothing of its own.
    // Dovecot 2.3: its replicator pushes the changes; the push service runs on both hosts, to hand it the users
    // whose mailboxes changed (it is not told of an expunge alone).
    expect(a!.retired.units.filter((u) => u.component === 'replication').map((u) => u.unit)).toEqual(['mailops-replica.timer']);
    expect(b!.retired.units.filter((u) => u.component === 'replication').map((u) => u.unit)).toEqual([]);
    for (const h of [a!, b!]) expect(h.services.map((s) => s.unit)).toContain('mailops-replica-push');
    // The activation script runs the replication commands after every service is checked.
    const facts = { ...convergedFacts(b!), commandsDone: b!.commands.flatMap((c, i) => (c.component === 'replication' ? [] : [i])) };
    const p = plan(b!, facts);
    expect(p.changes.map((c) => c.kind)).toEqual(['command', 'command', 'command']);
    const text = activationScript({ desired: b!, facts, plan: p, digest: 'abc' });
    expect(text.indexOf("step command 'trust the certificate")).toBeGreaterThan(text.indexOf('step check services'));
    expect(text.indexOf('phase running')).toBeLessThan(text.indexOf("step command 'trust the certificate"));
  });

  it('a change of dovecot.conf alone: doveconf checks the staged file beside the unchanged replication.conf it includes, copied from its place', () => {
    const [a] = pinned();
    const conf = fileOf(a!, '/etc/dovecot/dovecot.conf')!;
    const facts = convergedFacts(a!);
    facts.files[conf.path] = { ...facts.files[conf.path]!, sha256: 'c'.repeat(64) };
    const p = plan(a!, facts);
    expect(p.changes.filter((c) => c.kind === 'file').map((c) => (c as { path: string }).path)).toEqual([conf.path]);
    const text = activationScript({ desired: a!, facts, plan: p, digest: 'abc' });
    const copy = text.split('\n').find((l) => l.startsWith('for f in ') && l.includes('cp -p "$f" "$STAGE$f"'))!;
    const copied = copy.replace(/^for f in (.*?); do .*$/, '$1').split(' ');
    expect(copied).toContain('/etc/dovecot/replication.conf');
    expect(copied).not.toContain(conf.path);
    expect(text.indexOf(copy)).toBeLessThan(text.indexOf("step validate 'doveconf -n'"));
    expect(text.indexOf("step validate 'doveconf -n'")).toBeGreaterThan(0);
  });

  it('the trust guard holds the recorded fingerprint itself: a certificate the other host just made again is pinned in the same apply, whatever replica.sh on the host still says', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-pin-'));
    const pem = join(dir, 'peer.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=mx1.example.com', '-keyout', join(dir, 'k'), '-out', pem], { stdio: 'ignore' });
    const fp = new X509Certificate(readFileSync(pem)).fingerprint256.replace(/:/g, '').toLowerCase();
    const guardOf = (peerFp: string) => {
      const [, b] = renderHosts(loadSite(replicated()).site, { tls: { 'mx1.example.com': peerFp, 'mx2.example.com': FP2 } });
      const cmd = b!.commands.find((c) => c.name === 'trust the certificate of mx1.example.com for replication')!;
      expect(cmd.unless).toContain('/etc/dovecot/replica-peer.pem');
      return cmd.unless!.replaceAll('/etc/dovecot/replica-peer.pem', pem);
    };
    const done = (guard: string) => spawnSync('sh', ['-c', guard]).status === 0;
    expect(done(guardOf(fp))).toBe(true);
    // The certificate recorded for mx1 is another one now: the pin is due, though the pinned file is intact.
    expect(done(guardOf(FP1))).toBe(false);
    rmSync(pem);
    expect(done(guardOf(fp))).toBe(false);
  });

  it('before a certificate is recorded (self-signed), no host trusts or adopts; with a CA-signed certificate adopting needs no pin', () => {
    const names = (h: DesiredHost) => h.commands.filter((c) => c.component === 'replication').map((c) => c.name);
    const [a, b] = render(replicated());
    expect(names(a!)).toEqual(['folders of new users taken from mx2.example.com with their mail, or made with the GUIDs both mailbox hosts give them']);
    expect(names(b!)).toEqual(['folders of new users taken from mx1.example.com with their mail, or made with the GUIDs both mailbox hosts give them']);
    expect(script(a!)).toContain("\nFINGERPRINT=''\n");
    const file = replicated();
    writeFileSync(file, readFileSync(file, 'utf8').replace('stack:\n', 'stack:\n  tls: { mode: files, cert: /etc/ssl/mail.crt, key: /etc/ssl/mail.key }\n'));
    const [fa, fb] = render(file);
    expect(names(fb!)).toEqual(['folders of new users taken from mx1.example.com with their mail, or made with the GUIDs both mailbox hosts give them', 'mailboxes made apart here and on mx1.example.com take its GUIDs']);
    expect(names(fa!)).toEqual(['folders of new users taken from mx2.example.com with their mail, or made with the GUIDs both mailbox hosts give them']);
    expect(fileOf(fa!, '/etc/dovecot/dovecot.conf')!.content).toMatch(/^ssl_client_ca_file = \/etc\/ssl\/certs\/ca-certificates\.crt$/m);
  });

  it('without replication: no replication file, command, port or timer, and what a replicated host had is retired', () => {
    const [a, b] = render(site({ roles: ['mailbox', 'mailbox'] }));
    for (const h of [a!, b!]) {
      expect(h.files.filter((f) => /replica|mailops-replica/.test(f.path))).toEqual([]);
      expect(h.commands.filter((c) => /replication|GUID/.test(c.name))).toEqual([]);
      expect(h.ports.map((p) => p.port)).not.toContain(12345);
      expect(fileOf(h, '/etc/dovecot/dovecot.conf')!.content).not.toMatch(/replica|doveadm_port/);
      expect(h.retired.files.map((f) => f.path)).toEqual(expect.arrayContaining(['/etc/dovecot/replication.conf', '/etc/dovecot/replica-peer.pem', '/etc/mailops/replica.sh', '/etc/systemd/system/mailops-replica.timer', '/etc/systemd/system/mailops-replica-push.service']));
      // Named by two rules that hold (replication off, Dovecot 2.3): retired once.
      expect(h.retired.units.filter((u) => u.component === 'replication').map((u) => u.unit)).toEqual(['mailops-replica-push', 'mailops-replica.timer']);
    }
  });
});

describe('replica.sh, run by the shell', () => {
  const [a, b] = pinned();
  const dir = mkdtempSync(join(tmpdir(), 'mailops-replica-'));
  const scriptFile = join(dir, 'replica.sh');
  writeFileSync(scriptFile, script(b!));
  /** Run one function of the script (its definitions, without its last lines that dispatch on $1). */
  const call = (fn: string, files: Record<string, string> = {}): string => {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const defs = script(b!).replace(/\n: > "\$TMP\/all"[\s\S]*$/, '\n').replace(/^TMP=.*$/m, `TMP=${dir}`).replace(/^trap .*$/m, '');
    return execFileSync('sh', ['-c', `${defs}\n${fn}`], { encoding: 'utf8' });
  };

  it('is valid POSIX shell', () => {
    expect(() => execFileSync('sh', ['-n', scriptFile])).not.toThrow();
  });

  it('both hosts derive the same GUID for a user\'s folder: SHA-256 of the site, the user and the folder, 32 hex digits', () => {
    const g = call('guid alice@example.com INBOX').trim();
    expect(g).toBe(createHash('sha256').update('mailops hosts\nalice@example.com\nINBOX\n').digest('hex').slice(0, 32));
    expect(script(a!)).toContain("\nSEED='mailops hosts'\nFOLDERS='INBOX Drafts Junk Sent Trash'\n");
    expect(call('guid alice@example.com Sent').trim()).not.toBe(g);
    expect(call('guid bob@example.com INBOX').trim()).not.toBe(g);
  });

  it('adopts the first host\'s GUID for a mailbox of the same name only; leaves equal ones and renames to dsync', () => {
    const rows = (xs: string[][]) => xs.map((x) => `${x.join('\t')}\n`).join('');
    const out = call('differing', {
      peer: rows([
        ['alice@example.com', 'INBOX', 'a1'],
        ['alice@example.com', 'Sent', 's1'],
        ['alice@example.com', 'Old name', 'r1'],
        ['alice@example.com', 'Projects 2024', 'p1'],
        ['bob@example.com', 'INBOX', 'b1'],
      ]),
      here: rows([
        ['alice@example.com', 'INBOX', 'a2'],
        ['alice@example.com', 'Sent', 's1'],
        // Renamed on this host: the GUID is on the other host under the old name.
        ['alice@example.com', 'New name', 'r1'],
        ['alice@example.com', 'Projects 2024', 'p2'],
        ['alice@example.com', 'Only here', 'o2'],
        ['bob@example.com', 'INBOX', 'b2'],
        ['carol@other.example', 'INBOX', 'c2'],
      ]),
    });
    expect(out).toBe('alice@example.com\tINBOX\ta1\nalice@example.com\tProjects 2024\tp1\nbob@example.com\tINBOX\tb1\n');
    // A GUID this host already gives another mailbox of the user is never given to a second one.
    expect(call('differing', { peer: rows([['alice@example.com', 'INBOX', 'x1']]), here: rows([['alice@example.com', 'INBOX', 'a2'], ['alice@example.com', 'Archive', 'x1']]) })).toBe('');
    expect(call('differing', { peer: '', here: rows([['alice@example.com', 'INBOX', 'a2']]) })).toBe('');
  });
});

/** replica.sh's definitions without its dispatch, with TMP, RUN (run/) and VMAIL (vmail/) in a directory of the test. */
const definitions = (h: ReturnType<typeof pinned>[number], dir: string) =>
  script(h)
    .replace(/\n: > "\$TMP\/all"[\s\S]*$/, '\n')
    .replace(/^TMP=.*$/m, `TMP=${dir}`)
    .replace(/^trap .*$/m, '')
    .replace(/^RUN=.*$/m, `RUN=${dir}/run`)
    .replace(/^VMAIL=.*$/m, `VMAIL=${dir}/vmail`);

describe('replica.sh on Dovecot 2.4 (no replicator): the push, run by the shell with a stand-in doveadm', () => {
  const hosts = loadSite(replicated()).site;
  const b24 = renderHosts(hosts, { hosts: ['mx2'], detectedOs: new Map([['mx2', { family: 'debian', dovecot: '2.4' }]]), tls: { 'mx1.example.com': FP1, 'mx2.example.com': FP2 } })[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'mailops-replica24-'));
  /**
   * Run shell code after the script's definitions, with RUN and TMP in a directory of the test, doveadm a
   * function that logs its arguments and fails for the users in $dir/down, and the other host's TLS
   * handshake (answers) one that fails while $dir/deaf exists.
   */
  const call = (fn: string) => {
    const defs = definitions(b24, dir);
    // fetch prints $dir/fetch.here, or $dir/fetch.peer when asked of the other host (-S).
    const stub = `doveadm() { echo "doveadm $*" >> ${dir}/calls; case " $* " in *" fetch "*) printf 'mailbox-guid\\tuid\\tguid\\n'; case " $* " in *" -S "*) cat ${dir}/fetch.peer;; *) cat ${dir}/fetch.here;; esac; return 0;; esac; [ "$1" = user ] && printf 'bob@example.com\\nalice@example.com\\n'; [ "$1" = sync ] && grep -qsxF "$3" ${dir}/down && { echo "dsync(\$3): Error: connect(mx1.example.com) failed: Connection refused" >&2; return 75; }; return 0; }\ntimeout() { t="timeout"; while [ "\${1#-}" != "$1" ]; do t="$t $1 $2"; shift 2; done; echo "$t $1 $2 $3" >> ${dir}/timeouts; shift; "$@"; }\nanswers() { echo asked >> ${dir}/asked; [ ! -e ${dir}/deaf ]; }`;
    return spawnSync('sh', ['-c', `${defs}\n${stub}\nmkdir -p ${dir}/run\n${fn}`], { encoding: 'utf8' });
  };
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8');
    } catch {
      return '';
    }
  };

  it('knows a user by the home of the mail file: <vmail>/<domain>/<user>/…', () => {
    const v = `${dir}/vmail`;
    const r = call(`printf '%s\\n' ${v}/example.com/alice/Maildir/dovecot.index.log ${v}/example.com/alice/Maildir/.Sent/dovecot.index.log ${v}/other.example/bob/Maildir/dovecot.list.index.log ${v}/stray.log /elsewhere/example.com/carol/Maildir/dovecot.index.log | users_of`);
    expect(r.stdout).toBe('alice@example.com\nbob@other.example\n');
  });

  it('syncs each user with the other host over TLS; a user whose sync failed is kept for the next try, said once, and said again when it works', () => {
    writeFileSync(join(dir, 'users'), 'alice@example.com\nbob@example.com\n');
    writeFileSync(join(dir, 'down'), 'bob@example.com\n');
    rmSync(join(dir, 'timeouts'), { force: true });
    let r = call(`sync_users ${dir}/users`);
    // Killed (SIGKILL 10 s after SIGTERM, which a stalled doveadm ignores) after a minute, a full sync after 10.
    expect(read('timeouts')).toBe('timeout -k 10 60 doveadm sync\ntimeout -k 10 60 doveadm sync\n');
    expect(read('calls')).toBe('doveadm sync -u alice@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345\ndoveadm sync -u bob@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345\n');
    expect(read('run/failed')).toBe('bob@example.com\n');
    expect(r.stderr).toBe('replication: bob@example.com: the sync with mx1.example.com failed, tried again in seconds: dsync(bob@example.com): Error: connect(mx1.example.com) failed: Connection refused\n');
    // Still down: not said again. A full sync (-f) of alice alone keeps bob's failure.
    r = call(`sync_users ${dir}/users`);
    expect(r.stderr).toBe('');
    writeFileSync(join(dir, 'one'), 'alice@example.com\n');
    call(`sync_users ${dir}/one -f`);
    expect(read('timeouts').split('\n').at(-2)).toBe('timeout -k 10 600 doveadm sync');
    expect(read('calls').split('\n').at(-2)).toBe('doveadm sync -u alice@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345');
    expect(read('run/failed')).toBe('bob@example.com\n');
    // Up again.
    writeFileSync(join(dir, 'down'), '');
    r = call(`sync_users ${dir}/users`);
    expect(r.stdout).toBe('replication: bob@example.com: synced with mx1.example.com again\n');
    expect(read('run/failed')).toBe('');
    // What the follower's heal and adopt read as failed users, and how they ask for syncs: the push's file and its next round.
    writeFileSync(join(dir, 'run/failed'), 'carol@example.com\n');
    expect(call('failed_users').stdout).toBe('carol@example.com\n');
    call('sync_soon carol@example.com');
    expect(read('run/full')).toBe('');
    expect(call('[ -e "$RUN/full" ] && echo asked').stdout).toBe('asked\n');
  });

  it('a full sync starts only once the other host completes a TLS handshake: one that does not is asked once a round, every full sync of the round fails at once and is said; quick syncs are not held to it', () => {
    writeFileSync(join(dir, 'users'), 'alice@example.com\nbob@example.com\n');
    writeFileSync(join(dir, 'down'), '');
    writeFileSync(join(dir, 'run/failed'), '');
    writeFileSync(join(dir, 'deaf'), '');
    for (const f of ['calls', 'asked']) rmSync(join(dir, f), { force: true });
    let r = call(`sync_users ${dir}/users -f`);
    expect(read('asked')).toBe('asked\n');
    expect(read('calls')).toBe('');
    expect(r.stderr).toBe(['alice', 'bob'].map((u) => `replication: ${u}@example.com: the sync with mx1.example.com failed, tried again in seconds: mx1.example.com did not complete a TLS handshake on port 12345 within 15 s\n`).join(''));
    expect(read('run/failed')).toBe('alice@example.com\nbob@example.com\n');
    // Quick syncs go on as ever (their minute bounds them).
    r = call(`sync_users ${dir}/users`);
    expect(read('asked')).toBe('asked\n');
    expect(read('calls')).toBe('doveadm sync -u alice@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345\ndoveadm sync -u bob@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345\n');
    // The next round asks again; answered, the full syncs run.
    rmSync(join(dir, 'deaf'));
    rmSync(join(dir, 'calls'));
    rmSync(join(dir, 'run/full'), { force: true });
    r = call(`deaf=1; stamp=$TMP/a; next=$TMP/b; : > $stamp; folders=; n=1; again=; round; echo "deaf=[$deaf]"; sync_users ${dir}/users -f`);
    expect(r.stdout).toBe('deaf=[]\n');
    expect(read('asked')).toBe('asked\nasked\nasked\n');
    expect(read('calls')).toBe('doveadm sync -u alice@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345\ndoveadm sync -u bob@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345\n');
    expect(read('run/failed')).toBe('');
    rmSync(join(dir, 'asked'));
  });

  it('seed: a user the other host holds (a host joining a site with mail) is taken from it in one full sync, its GUIDs and mail; one neither host has gets the derived GUIDs; one whose sync fails is left to its next sync, and said', () => {
    rmSync(join(dir, 'calls'), { force: true });
    // alice has mail here; bob is new on both hosts; carol and dave have mail on the other host only.
    const stub = `doveadm() {
      echo "doveadm $*" >> ${dir}/calls
      case " $* " in
        " user "*) printf 'alice@example.com\\nbob@example.com\\ncarol@example.com\\ndave@example.com\\n' ;;
        *" -S "*) printf 'username\\tguid\\nalice@example.com\\ta1\\ncarol@example.com\\tc1\\ncarol@example.com\\tc2\\ndave@example.com\\td1\\n' ;;
        *" mailbox status "*) printf 'username\\tguid\\nalice@example.com\\ta1\\n' ;;
        *" sync "*) [ "$3" = dave@example.com ] && { echo 'dsync(dave@example.com): Error: read(mx1.example.com) failed: EOF' >&2; return 75; } ;;
      esac
      return 0
    }`;
    const r = call(`${stub}\nseed check; echo "check $?"; seed run; echo "run $?"`);
    const g = (f: string) => createHash('sha256').update(`mailops hosts\nbob@example.com\n${f}\n`).digest('hex').slice(0, 32);
    expect(read('calls')).toBe(
      [
        'doveadm user *',
        'doveadm -f tab mailbox status -A guid *',
        'doveadm user *',
        'doveadm -f tab mailbox status -A guid *',
        'doveadm -f tab -o doveadm_ssl=ssl mailbox status -S mx1.example.com:12345 -A guid *',
        ...['INBOX', 'Drafts', 'Junk', 'Sent', 'Trash'].map((f) => `doveadm mailbox create -u bob@example.com -g ${g(f)} ${f}`),
        'doveadm sync -u carol@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345',
        'doveadm sync -u dave@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345',
        '',
      ].join('\n'),
    );
    expect(r.stdout).toBe('check 1\nreplication: bob@example.com: INBOX Drafts Junk Sent Trash made with the GUIDs both hosts give them\nreplication: carol@example.com: folders and mail taken from mx1.example.com\nrun 0\n');
    expect(r.stderr).toBe('replication: dave@example.com: could not be taken from mx1.example.com yet, its next sync will (dsync(dave@example.com): Error: read(mx1.example.com) failed: EOF)\n');
    // The other host cannot be asked: every new user is seeded, none synced.
    rmSync(join(dir, 'calls'), { force: true });
    const down = stub.replace(`*" -S "*) printf`, `*" -S "*) return 75; printf`);
    expect(call(`${down}\nseed run`).stdout).toBe(['bob', 'carol', 'dave'].map((u) => `replication: ${u}@example.com: INBOX Drafts Junk Sent Trash made with the GUIDs both hosts give them\n`).join(''));
    expect(read('calls')).not.toContain('doveadm sync');
  });

  it('a round of the push: nothing when nothing changed; a changed index log is synced quick, a changed folder in full; failures tried again every 5 rounds; everyone when asked', () => {
    const v = `${dir}/vmail`;
    rmSync(join(dir, 'calls'), { force: true });
    // Both hosts have the same recent messages: no collision.
    const same = 'g-inbox\t1\tm-one\ng-inbox\t2\tm-two\n';
    writeFileSync(join(dir, 'fetch.here'), same);
    writeFileSync(join(dir, 'fetch.peer'), same);
    writeFileSync(join(dir, 'down'), '');
    writeFileSync(join(dir, 'run-failed'), '');
    const rounds = `
      rm -f "$RUN/failed" "$RUN/full"
      for u in alice bob; do mkdir -p ${v}/example.com/$u/Maildir/.Sent; touch -d '-1 hour' ${v}/example.com/$u/Maildir/dovecot.index.log ${v}/example.com/$u/Maildir/.Sent/dovecot.index.log; done
      : > "$TMP/stamp.a"; stamp="$TMP/stamp.a"; next="$TMP/stamp.b"; folders="$(find ${v} -mindepth 4 -maxdepth 4 -type d -name '.?*')
"; n=0
      echo R1; round; cat ${dir}/calls 2>/dev/null; : > ${dir}/calls
      echo R2 a new folder; mkdir ${v}/example.com/alice/Maildir/.Travel; round; cat ${dir}/calls; : > ${dir}/calls
      echo R3 a delivery; touch -d '-5 seconds' ${v}/example.com/bob/Maildir/dovecot.index.log; touch -d '-10 seconds' "$stamp"; round; cat ${dir}/calls; : > ${dir}/calls
      echo R4; round; cat ${dir}/calls; : > ${dir}/calls
      echo R5 a flag, the other host down; echo bob@example.com > ${dir}/down; touch -d '-5 seconds' ${v}/example.com/bob/Maildir/.Sent/dovecot.index.log; touch -d '-10 seconds' "$stamp"; round; cat ${dir}/calls; : > ${dir}/calls
      echo R6; round; cat ${dir}/calls; : > ${dir}/calls
      echo R10; n=9; round; cat ${dir}/calls; : > ${dir}/calls
      echo R31 asked; : > "$RUN/full"; round; cat ${dir}/calls; : > ${dir}/calls; [ -e "$RUN/full" ] || echo done
    `;
    const recentOfBob = [
      "doveadm -f tab fetch -u bob@example.com mailbox-guid uid guid savedsince 10mins",
      "doveadm -f tab -o doveadm_ssl=ssl fetch -S mx1.example.com:12345 -u bob@example.com mailbox-guid uid guid savedsince 10mins",
    ];
    const r = call(rounds);
    expect(r.stdout).toBe(
      [
        'R1',
        'R2 a new folder',
        'doveadm sync -u alice@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345',
        'R3 a delivery',
        'doveadm sync -u bob@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345',
        ...recentOfBob,
        'R4',
        'R5 a flag, the other host down',
        'doveadm sync -u bob@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345',
        'R6',
        'R10',
        'doveadm sync -u bob@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345',
        'R31 asked',
        "doveadm user *",
        'doveadm sync -u alice@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345',
        'doveadm sync -u bob@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345',
        'done',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toContain('replication: bob@example.com: the sync with mx1.example.com failed');
    expect(read('run/failed')).toBe('bob@example.com\n');
  });

  it('two deliveries to one user, one on each host within a round, that took the same UID: the quick sync is followed by a full one', () => {
    const v = `${dir}/vmail`;
    rmSync(join(dir, 'calls'), { force: true });
    writeFileSync(join(dir, 'down'), '');
    // UID 2 of the INBOX is another message on each host; UID 3 of Sent is on one host only (not yet crossed: no collision).
    writeFileSync(join(dir, 'fetch.here'), 'g-inbox\t1\tm-one\ng-inbox\t2\tm-here\ng-sent\t3\tm-sent\n');
    writeFileSync(join(dir, 'fetch.peer'), 'g-inbox\t1\tm-one\ng-inbox\t2\tm-there\n');
    const rounds = `
      rm -f "$RUN/failed" "$RUN/full"
      mkdir -p ${v}/example.com/bob/Maildir; touch -d '-1 hour' ${v}/example.com/bob/Maildir/dovecot.index.log
      : > "$TMP/stamp.a"; stamp="$TMP/stamp.a"; next="$TMP/stamp.b"; folders="$(find ${v} -mindepth 4 -maxdepth 4 -type d -name '.?*')
"; n=0
      touch -d '-5 seconds' ${v}/example.com/bob/Maildir/dovecot.index.log; touch -d '-10 seconds' "$stamp"; round
    `;
    let r = call(rounds);
    expect(read('calls').split('\n').filter((l) => l.startsWith('doveadm sync'))).toEqual([
      'doveadm sync -u bob@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345',
      'doveadm sync -u bob@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345',
    ]);
    expect(r.stderr).toBe('replication: bob@example.com: a message here and another one on mx1.example.com took the same UID: synced in full\n');
    // A message on one host only, not at a UID the other has: no full sync.
    rmSync(join(dir, 'calls'), { force: true });
    writeFileSync(join(dir, 'fetch.peer'), 'g-inbox\t1\tm-one\ng-inbox\t2\tm-here\n');
    r = call(rounds);
    expect(read('calls').split('\n').filter((l) => l.startsWith('doveadm sync'))).toEqual(['doveadm sync -u bob@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345']);
    expect(r.stderr).toBe('');
    // The other host cannot be asked: in full all the same, without a word of a collision.
    rmSync(join(dir, 'calls'), { force: true });
    rmSync(join(dir, 'fetch.peer'));
    r = call(rounds.replace('round', 'doveadm() { case " $* " in *" -S "*) echo "doveadm $*" >> ' + dir + '/calls; return 75;; esac; echo "doveadm $*" >> ' + dir + '/calls; case " $* " in *" fetch "*) printf "mailbox-guid\\tuid\\tguid\\n"; cat ' + dir + '/fetch.here;; esac; return 0; }; round'));
    expect(read('calls').split('\n').filter((l) => l.startsWith('doveadm sync'))).toEqual([
      'doveadm sync -u bob@example.com -N -l 20 -T 30 tcps:mx1.example.com:12345',
      'doveadm sync -u bob@example.com -N -l 20 -T 120 -f tcps:mx1.example.com:12345',
    ]);
    expect(r.stderr).toBe('');
  });
});

describe('replica.sh on Dovecot 2.3 (the replicator pushes): watch hands it the users who expunged mail', () => {
  const hosts = loadSite(replicated()).site;
  const b23 = renderHosts(hosts, { hosts: ['mx2'], detectedOs: new Map([['mx2', { family: 'debian', dovecot: '2.3' }]]), tls: { 'mx1.example.com': FP1, 'mx2.example.com': FP2 } })[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'mailops-replica23-'));
  const v = `${dir}/vmail`;
  /**
   * Shell code after the script's definitions. doveadm logs its arguments, and its replicator is down while
   * $dir/down exists; journalctl logs its arguments and prints $dir/journal.in once (the lines after its cursor),
   * then a cursor line.
   */
  const call = (fn: string) => {
    const defs = definitions(b23, dir);
    const stub = [
      `doveadm() { echo "doveadm $*" >> ${dir}/calls; [ "$1" = replicator ] && [ -e ${dir}/down ] && { echo "Fatal: net_connect_unix(/run/dovecot/replicator-doveadm) failed: No such file or directory" >&2; return 89; }; return 0; }`,
      // Each read gets the next cursor (c1, c2...); a cursor in $dir/lost is one the journal no longer knows.
      `journalctl() { echo "journalctl $*" >> ${dir}/calls; case " $* " in *" --after-cursor=$(cat ${dir}/lost 2>/dev/null) "*) echo "Failed to seek to cursor: Invalid argument" >&2; return 1;; esac; cat ${dir}/journal.in 2>/dev/null; rm -f ${dir}/journal.in; k=$(($(cat ${dir}/k 2>/dev/null || echo 0) + 1)); echo $k > ${dir}/k; echo "-- cursor: c$k"; }`,
    ].join('\n');
    return spawnSync('sh', ['-c', `${defs}\n${stub}\nmkdir -p ${dir}/run\n${fn}`], { encoding: 'utf8' });
  };
  const journal = [
    'imap(bob@example.com)<412><Yx3kA8AFhOx/AAAB>: expunge: box=INBOX, uid=7',
    'imap(bob@example.com)<412><Yx3kA8AFhOx/AAAB>: expunge: box=Trash, uid=2',
    'pop3(carol@example.com)<415><Zk1QA8AFkOx/AAAB>: expunge: box=INBOX, uid=3',
    // Brought by dsync, delivered, or said by the replicator: not the users' own expunges.
    'doveadm(alice@example.com)<420><AbCdA8AFhOx/AAAB>: expunge: box=INBOX, uid=9',
    'lmtp(alice@example.com)<430><CdEfA8AFhOx/AAAB>: sieve: msgid=<1@x>: stored mail into mailbox \'INBOX\'',
    'imap(alice@example.com)<412><Yx3kA8AFhOx/AAAB>: Disconnected: Logged out in=52 out=1184',
  ].join('\n');

  it('a round that saw an index log change (and the one after it) reads the journal on from its cursor; the users who expunged over IMAP or POP3 are handed to the replicator; nothing is synced here, nothing in full', () => {
    expect(script(b23)).toMatch(/^MODE=replicator$/m);
    rmSync(join(dir, 'run'), { recursive: true, force: true });
    rmSync(join(dir, 'k'), { force: true });
    writeFileSync(join(dir, 'journal.in'), `${journal}\n`);
    const rounds = `
      for u in alice bob; do mkdir -p ${v}/example.com/$u/Maildir/.Sent; touch -d '-1 hour' ${v}/example.com/$u/Maildir/dovecot.index.log; done
      echo c0 > "$RUN/journal.cursor"
      : > "$TMP/stamp.a"; stamp="$TMP/stamp.a"; next="$TMP/stamp.b"; folders="$(find ${v} -mindepth 4 -maxdepth 4 -type d -name '.?*')
"; n=0; again=
      echo R1; round; cat ${dir}/calls 2>/dev/null; : > ${dir}/calls
      echo R2 an expunge; touch -d '-5 seconds' ${v}/example.com/bob/Maildir/dovecot.index.log; touch -d '-10 seconds' "$stamp"; round; cat ${dir}/calls; : > ${dir}/calls
      echo R3 looks again; round; cat ${dir}/calls; : > ${dir}/calls
      echo R4; round; cat ${dir}/calls; : > ${dir}/calls
      echo R300 asked; : > "$RUN/full"; n=299; round; cat ${dir}/calls; : > ${dir}/calls
      echo R301 the replicator down; touch ${dir}/down; printf '%s\\n' 'imap(alice@example.com)<500><Qw>: expunge: box=INBOX, uid=4' > ${dir}/journal.in; touch ${v}/example.com/alice/Maildir/dovecot.index.log; touch -d '-2 seconds' "$stamp"; round; cat ${dir}/calls; : > ${dir}/calls; rm -f ${dir}/down
      echo R302 its cursor rotated away; echo c3 > ${dir}/lost; round; cat ${dir}/calls; : > ${dir}/calls; [ -e "$RUN/journal.cursor" ] || echo dropped
      echo R303; touch ${v}/example.com/alice/Maildir/dovecot.index.log; touch -d '-2 seconds' "$stamp"; round; cat ${dir}/calls; cat "$RUN/journal.cursor"
    `;
    const r = call(rounds);
    const read = (c?: string) => `journalctl -u dovecot -o cat --no-pager --show-cursor${c ? ` --after-cursor=${c}` : ''}`;
    expect(r.stdout).toBe(
      [
        'R1',
        'R2 an expunge',
        read('c0'),
        'doveadm replicator replicate -p low bob@example.com',
        'doveadm replicator replicate -p low carol@example.com',
        'R3 looks again',
        read('c1'),
        'R4',
        'R300 asked',
        // Every fifth round: the users whose last sync failed (none here).
        "doveadm -f tab replicator status *",
        'R301 the replicator down',
        read('c2'),
        'doveadm replicator replicate -p low alice@example.com',
        'R302 its cursor rotated away',
        read('c3'),
        'dropped',
        'R303',
        read(),
        'c4',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe("replication: alice@example.com: Dovecot's replicator could not be asked to sync it: Fatal: net_connect_unix(/run/dovecot/replicator-doveadm) failed: No such file or directory\n");
  });

  it('the users whose last sync failed (the other host restarting Dovecot) are handed to the replicator again every fifth round; adopt --check waits 30 s at most for them to sync', () => {
    rmSync(join(dir, 'calls'), { force: true });
    // The replicator's status: carol failed; after the third sleep of the check, she synced.
    const status = `doveadm() {
      echo "doveadm $*" >> ${dir}/calls
      case " $* " in
        *" replicator status "*) printf 'username\\tpriority\\tfast sync\\tfull sync\\tsuccess sync\\tfailed\\nalice@example.com\\tnone\\t00:00:03\\t00:00:03\\t00:00:03\\t-\\n'; [ -e ${dir}/failing ] && printf 'carol@example.com\\tnone\\t00:00:02\\t00:00:02\\t00:05:00\\ty\\n' ;;
        *" mailbox status "*) printf 'username\\tmailbox\\tguid\\nalice@example.com\\tINBOX\\ta1\\n' ;;
      esac
      return 0
    }
    timeout() { while [ "\${1#-}" != "$1" ]; do shift 2; done; shift; "$@"; }
    sleep() { echo "sleep $1" >> ${dir}/calls; k=$(($(cat ${dir}/slept 2>/dev/null || echo 0) + 1)); echo $k > ${dir}/slept; [ $k -ge 3 ] && rm -f ${dir}/failing; return 0; }`;
    writeFileSync(join(dir, 'failing'), '');
    let r = call(`${status}\nn=4; again=; : > "$TMP/stamp.a"; stamp="$TMP/stamp.a"; next="$TMP/stamp.b"; folders=; round; cat ${dir}/calls`);
    expect(r.stdout).toBe(['doveadm -f tab replicator status *', 'doveadm replicator replicate -p high carol@example.com', ''].join('\n'));
    // The check: carol's failure is waited for; once she synced, the GUIDs are compared (the same: nothing to do).
    rmSync(join(dir, 'calls'), { force: true });
    rmSync(join(dir, 'slept'), { force: true });
    r = call(`${status}\n: > "$TMP/all"; adopt check "$TMP/all"; echo "check $?"; cat ${dir}/calls`);
    const calls = r.stdout.split('\n');
    expect(calls[0]).toBe('check 0');
    expect(calls.filter((l) => l.startsWith('sleep'))).toEqual(['sleep 2', 'sleep 2', 'sleep 2']);
    expect(calls.filter((l) => l.includes('replicator status'))).toHaveLength(4);
    expect(calls.filter((l) => l.includes('mailbox status'))).toEqual(['doveadm -f tab -o doveadm_ssl=ssl mailbox status -S mx1.example.com:12345 -A guid *', 'doveadm -f tab mailbox status -A guid *']);
    // A failure that stays: pending after 30 s (15 sleeps), nothing asked of the other host.
    rmSync(join(dir, 'calls'), { force: true });
    rmSync(join(dir, 'slept'), { force: true });
    writeFileSync(join(dir, 'failing'), '');
    r = call(`${status.replace('[ $k -ge 3 ] && rm -f', '[ $k -ge 99 ] && rm -f')}\n: > "$TMP/all"; adopt check "$TMP/all"; echo "check $?"; cat ${dir}/calls`);
    expect(r.stdout.split('\n')[0]).toBe('check 1');
    expect(r.stdout.split('\n').filter((l) => l.startsWith('sleep'))).toHaveLength(15);
    expect(r.stdout).not.toContain('mailbox status');
    rmSync(join(dir, 'failing'), { force: true });
  });

  it('at its first start, watch takes the journal from its end; once it has a cursor, from there (kept across restarts)', () => {
    rmSync(join(dir, 'calls'), { force: true });
    rmSync(join(dir, 'run'), { recursive: true, force: true });
    rmSync(join(dir, 'k'), { force: true });
    const start = `watch() { ${/^watch\(\) \{\n([\s\S]*?)\n  while :; do/m.exec(script(b23))![1]} ; }; watch; cat ${dir}/calls; cat "$RUN/journal.cursor"; : > ${dir}/calls; watch; cat ${dir}/calls`;
    expect(call(start).stdout).toBe('journalctl -u dovecot -n 1 -o cat --no-pager --show-cursor\nc1\n');
  });
});
