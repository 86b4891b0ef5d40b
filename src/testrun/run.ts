/**
 * `mailops test`: a playbook (and, with a base, its change) proven in throwaway containers. The same
 * code paths as the commands a user runs: apply is `mailops apply` on a copy of the playbook pointed at
 * the containers, verify is `mailops verify`'s checks; then the cases the playbook itself promises
 * (src/testrun/cases.ts), a re-apply that must change nothing, and teardown, always.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pLimit from 'p-limit';
import { runApply } from '../cli/apply.js';
import type { ApplyReport } from '../cli/apply.js';
import { resolverFor } from '../dns/client.js';
import type { Host, Site } from '../model/site.js';
import { RcptProber, smtpTransaction, imapFind, imapQuota, imapSession, newToken, pop3Find, pop3Stat, until } from '../probe/mail.js';
import type { Ep } from '../probe/mail.js';
import { clientHost, mailboxHosts } from '../render/names.js';
import { renderHosts } from '../render/site.js';
import { checkSite, loadSite } from '../site/load.js';
import { PlaybookError } from '../errors.js';
import { readSecret } from '../site/secrets.js';
import { readState } from '../state/state.js';
import { ensureDockerEngine } from '../testbed/engine.js';
import { dnsImage, peerImage, relayImage, vpsImage } from '../testbed/images.js';
import type { Log } from '../testbed/log.js';
import { MAIL_PORTS } from '../testbed/harness.js';
import type { VpsHost } from '../testbed/harness.js';
import { startWorld } from '../testbed/world.js';
import { shq } from '../facts/shell.js';
import type { World, WorldPeer } from '../testbed/world.js';
import { verifySubmissions } from '../verify/checks.js';
import { bounceFor } from '../verify/verdict.js';
import type { Endpoint } from '../verify/checks.js';
import { inboxWatch, peerChecks } from '../verify/peer.js';
import { verifySite } from '../verify/site.js';
import { deriveCases } from './cases.js';
import type { TestCase } from './cases.js';
import { throwawayPlaybook } from './copy.js';
import { Interrupted, Recorder } from './recorder.js';
import type { CaseFn } from './recorder.js';
import type { Suite, TestReport } from './report.js';

export interface TestRunOptions {
  /** The playbook the change starts from: its text, where it came from, and the file name it is read as. */
  base?: { text: string; name: string; file: string };
  /** Leave the containers running (and say how to reach and remove them). */
  keep?: boolean;
  /** Progress lines (stderr). */
  log: Log;
  /** Ports published on 127.0.0.1 per host (default: the mail ports and 443). */
  publish?: number[];
  /** The Debian release of the VPS containers (default SUITE, bookworm). */
  suite?: string;
}

/** The peer's sender for the mail it sends in the cases. */
const STRANGER = 'tester@peer.test';
/** How long mail may take to arrive. */
const DELIVERY_MS = 60_000;
/** How many of the playbook's checks run at once. */
const CHECK_LANES = 6;

/** A mailbox's password as the copy knows it (its secret, or the test password the copy gave it). */
function passwordOf(site: Site, address: string): string {
  const m = site.domains.flatMap((d) => d.mailboxes).find((x) => x.address === address);
  if (!m?.passwordSecret) throw new Error(`${address}: no password to log in with`);
  return readSecret(m.passwordSecret, address);
}

/** Outside domains the playbook forwards to (alias and catch-all targets): the peer takes their mail. */
function outsideDomains(sites: Site[]): string[] {
  const out = new Set<string>();
  for (const site of sites) {
    const ours = new Set(site.domains.map((d) => d.name));
    for (const d of site.domains) {
      for (const t of [...d.aliases.flatMap((a) => a.targets), ...(d.catchAll ? [d.catchAll] : [])]) {
        const dom = t.slice(t.lastIndexOf('@') + 1);
        if (!ours.has(dom)) out.add(dom);
      }
    }
  }
  return [...out].sort();
}

function applyDetail(r: ApplyReport): string {
  const parts = r.hosts.map((h) => `${h.name}${h.os ? ` (${h.os})` : ''}: ${h.ok ? `${h.changes} change${h.changes === 1 ? '' : 's'}` : `FAILED ${h.error ?? ''}`}`);
  if (r.dns) parts.push(`dns: ${r.dns.ok ? `${r.dns.changes} record set${r.dns.changes === 1 ? '' : 's'}` : `FAILED ${r.dns.error ?? r.dns.zones.find((z) => z.error)?.error ?? ''}`}`);
  return parts.join('; ');
}

/** The running mail-stack services of a host and when each became active (a restart changes it). */
async function serviceClock(world: World, h: VpsHost, units: string[]): Promise<Map<string, string>> {
  if (!units.length) return new Map();
  const r = await world.vps.exec(h, `for u in ${units.map((u) => `'${u}'`).join(' ')}; do printf '%s %s %s\\n' "$u" "$(systemctl is-active "$u" 2>/dev/null)" "$(systemctl show -p ActiveEnterTimestampMonotonic --value "$u" 2>/dev/null)"; done`);
  const out = new Map<string, string>();
  for (const l of r.stdout.trim().split('\n')) {
    const [u, state, t] = l.split(' ');
    if (u && state === 'active') out.set(u, t ?? '');
  }
  return out;
}

/** `text` is the playbook's text as validated into `site` (see loadPlaybookText). */
export async function runTest(file: string, text: string, site: Site, opts: TestRunOptions): Promise<TestReport> {
  const t0 = Date.now();
  const rec = new Recorder(opts.log);
  const notes: string[] = [];
  const baseSite = opts.base ? loadPlaybookText(opts.base.file, opts.base.text) : undefined;
  const work = mkdtempSync(join(tmpdir(), 'mailops-test-'));
  const copyFile = join(work, 'site.yaml');
  const sites = [site, ...(baseSite ? [baseSite] : [])];
  const hostSpecs = new Map<string, string>();
  for (const s of [...sites].reverse()) for (const h of s.hosts) hostSpecs.set(h.name, h.hostname);
  const relay = sites.map((s) => s.stack.relay).find(Boolean);

  // Every container and the network of this run are named with it (`docker ps --filter name=^PREFIX-`).
  const prefix = `mailops-test-${Math.random().toString(36).slice(2, 8)}`;
  opts.log(`starting throwaway containers (${prefix}-*): ${hostSpecs.size} host${hostSpecs.size === 1 ? '' : 's'}, a DNS server, a receiving peer${relay ? ' and a smarthost' : ''}...`);
  await ensureDockerEngine(opts.log);
  const images = { vps: await vpsImage(opts.log, opts.suite), dns: await dnsImage(opts.log), peer: await peerImage(opts.log), ...(relay ? { relay: await relayImage(opts.log) } : {}) };
  let world: World | undefined;
  // Ctrl-C: the world removes its containers itself (from the moment it starts); the copy, its state and the
  // SSH key go too. Before any container, nothing is left to remove: stop at once.
  let starting = false;
  const onSignal = () => {
    rec.interrupted = true;
    opts.log('interrupted: removing the throwaway containers...');
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
    if (!starting) process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const setup = rec.suite('setup');
  try {
    await rec.run(setup, 'throwaway containers started', async () => {
      starting = true;
      world = await startWorld({
        images,
        hosts: [...hostSpecs].map(([name, hostname]) => ({ name, hostname })),
        prefix,
        persistent: Boolean(opts.keep),
        keyDir: work,
        publish: opts.publish ?? [...MAIL_PORTS, 443],
        log: opts.log,
        ...(relay ? { relay: { username: relay.username, password: readSecret(relay.password, 'stack.relay.password') } } : {}),
      });
      const zones = [...new Set(sites.flatMap((s) => s.domains.map((d) => d.name)))];
      for (const z of zones) await world.addZone(z, { nameservers: site.dns.nameservers });
      for (const d of outsideDomains(sites)) await world.peer!.acceptDomain(d);
      return `${prefix}: ${world.vps.hosts.map((h) => `${h.name} ${h.ip}`).join(', ')}; DNS ${world.dns.ip}; peer ${world.peer!.ip}${zones.length ? `; zones ${zones.join(', ')}` : ''}`;
    });
    if (!world) return finish();
    const w = world;
    const byName = new Map(w.vps.hosts.map((h) => [h.name, h]));

    /** Writes the throwaway copy of a playbook text over the previous one (the state file stays). */
    const writeCopy = (text: string, from: string): Site => {
      const copy = throwawayPlaybook(
        text,
        dirname(from),
        {
          hosts: Object.fromEntries(w.vps.hosts.map((h) => [h.name, { ip: h.ip, sshPort: h.ports[22]!, hostKey: h.hostKey }])),
          identity: w.vps.identity,
          dns: { ip: w.dns.ip, port: w.dns.port, keyFile: w.dns.keyFile },
          ...(w.relay ? { relay: { hostname: w.relay.hostname, ports: [587, 2525, 465], spfInclude: w.relay.spfInclude } } : {}),
        },
        sites.flatMap((s) => s.domains.map((d) => d.name)),
      );
      for (const n of copy.notes) if (!notes.includes(n)) notes.push(n);
      Object.assign(process.env, copy.env);
      writeFileSync(copyFile, copy.text, { mode: 0o600 });
      const loaded = loadSite(copyFile).site;
      const store = "no IMAP and no POP3: the checks find delivered mail in the mailbox host's store (doveadm search)";
      if (!loaded.stack.imap && !loaded.stack.pop3 && !notes.includes(store)) notes.push(store);
      return loaded;
    };
    const apply = async (suite: Suite, name: string): Promise<ApplyReport | undefined> => {
      let report: ApplyReport | undefined;
      await rec.run(suite, name, async () => {
        report = await runApply(copyFile, { yes: true, knownHosts: join(work, 'known_hosts'), say: (l) => opts.log(`  ${l}`) }, 'apply');
        process.exitCode = 0;
        return report.ok ? applyDetail(report) : { fail: applyDetail(report) };
      });
      return report;
    };
    const ep = (h: Host): Ep => ({ host: '127.0.0.1', port: (p) => portOf(byName.get(h.name)!, p), servername: h.hostname });
    // Where the cases look for a message: the mailbox over IMAP or POP3, else (neither is on) its host's store.
    const finder = (s: Site, h: Host): Finder => (address, token) => (s.stack.imap || s.stack.pop3 ? findIn(s, ep(h), address, token) : storeFind(w, byName.get(h.name)!.container, address, token));
    const verifyEp = (h: Host): Endpoint => ({ address: '127.0.0.1', port: (p) => portOf(byName.get(h.name)!, p) });
    const resolverName = `127.0.0.1:${w.dns.port}`;

    const verify = async (s: Site, suite: Suite) => {
      const state = readState(copyFile);
      const checks = [...(await verifySite(s, state, s.hosts, verifyEp, { resolver: resolverFor(resolverName), resolverName })), ...(await peerChecks(s, state, s.hosts, verifyEp, w.peer!))];
      for (const c of checks) {
        // Nothing may be skipped in a world made for the test: a skipped check is a failed one. A replication
        // that failed says what the hosts logged of it.
        const why = c.status === 'failed' && c.name.startsWith('replication ') ? (await replicationLogs(w, s, (h) => byName.get(h.name)!.container)).join('; ') : '';
        await rec.run(suite, `${c.host}: ${c.name}`, async () => (c.status === 'ok' ? c.detail : { fail: c.status === 'skipped' ? `skipped: ${c.detail}` : `${c.detail}${why ? `; ${why}` : ''}` }));
      }
    };

    // The change: OLD applied first, mail put in every mailbox, then the playbook; nothing lost, restarts as planned.
    let before: Map<string, { token: string }> | undefined;
    let clocks: Map<string, Map<string, string>> | undefined;
    if (baseSite && opts.base) {
      const bs = rec.suite(`base (${opts.base.name})`);
      const old = writeCopy(opts.base.text, opts.base.file);
      const r = await apply(bs, `apply ${opts.base.name}`);
      if (!r?.ok) return finish();
      const reader = clientHost(old);
      const sent = old.domains.flatMap((d) => d.mailboxes).filter((x) => x.enabled).map((m) => ({ address: m.address, token: newToken(), arrived: false }));
      await rec.runAll(
        bs,
        sent.map((m) => ({
          name: `mail in ${m.address} before the change`,
          f: async () => {
            await w.peer!.send({ from: STRANGER, to: m.address, subject: `mailops test before the change [${m.token}]` });
            m.arrived = await until(async () => (await finder(old, reader)(m.address, m.token)) > 0, DELIVERY_MS);
            return m.arrived ? `delivered (${m.token})` : { fail: `the message sent before the change did not arrive in ${m.address}` };
          },
        })),
        CHECK_LANES,
      );
      before = new Map(sent.filter((m) => m.arrived).map((m) => [m.address, { token: m.token }]));
      const units = (s: Site, name: string) => renderHosts(s).find((d) => d.host.name === name)?.services.map((x) => x.unit) ?? [];
      clocks = new Map();
      for (const h of w.vps.hosts) clocks.set(h.name, await serviceClock(w, h, [...new Set([...units(old, h.name), ...units(site, h.name)])]));
    }

    const cur = writeCopy(text, file);
    const main = rec.suite('apply');
    const applied = await apply(main, `apply ${file}`);
    if (!applied?.ok) return finish();

    if (before && clocks) {
      const cs = rec.suite('the change');
      // Replicated, every mailbox host holds every mailbox (a host the change adds gets them by replication).
      const stores = cur.stack.replication ? mailboxHosts(cur) : [clientHost(cur)];
      for (const [address, { token }] of before) {
        const still = cur.domains.flatMap((d) => d.mailboxes).find((m) => m.address === address);
        await rec.run(cs, `no mail lost: ${address}`, async () => {
          if (!still) return { skip: `${address} is no mailbox in ${file} any more (its mail stays on disk, unread)` };
          if (!still.enabled) return { skip: `${address} is disabled in ${file} (its mail stays on disk)` };
          const on = stores.length > 1 ? ` on ${stores.map((h) => h.name).join(' and ')}` : '';
          for (const h of stores) {
            const count = () => finder(cur, h)(address, token);
            // The host it was delivered to has it at once; the other one may still be syncing.
            let n = await count();
            if (n === 0 && stores.length > 1) await until(async () => (n = await count()) > 0, DELIVERY_MS);
            if (n !== 1) return { fail: `the message from before the change (${token}) is ${n === 0 ? 'gone' : `there ${n} times`}${on ? ` on ${h.name}` : ''}` };
          }
          return `the message from before the change is still there${on} (${token})`;
        });
      }
      for (const h of w.vps.hosts) {
        await rec.run(cs, `${h.name}: services restarted only where the plan said`, async () => {
          const plan = applied.hosts.find((x) => x.name === h.name)?.plan ?? [];
          const said = new Set(plan.flatMap((c) => (c.kind === 'service' && c.action !== 'reload' && c.action !== 'enable' ? [c.unit] : [])));
          const then = clocks!.get(h.name)!;
          const now = await serviceClock(w, h, [...then.keys()]);
          const restarted = [...then].filter(([u, t]) => now.has(u) && now.get(u) !== t).map(([u]) => u);
          const stopped = [...then.keys()].filter((u) => !now.has(u));
          const unplanned = [...restarted, ...stopped].filter((u) => !said.has(u));
          if (unplanned.length) return { fail: `${unplanned.map((u) => `${u} ${stopped.includes(u) ? 'stopped' : 'restarted'}`).join(', ')}, but the plan did not say so (it said: ${[...said].join(', ') || 'no restarts'})` };
          return restarted.length || stopped.length ? `restarted: ${restarted.join(', ') || 'none'}; stopped: ${stopped.join(', ') || 'none'}; all as planned` : 'no service restarted';
        });
      }
    }

    await verify(cur, rec.suite('verify'));
    await runCases(rec, rec.suite('checks'), cur, deriveCases(cur, newToken()), ep(clientHost(cur)), finder(cur, clientHost(cur)), (h) => ep(h), w.peer!, diagnoser(w, cur, (h) => byName.get(h.name)!.container));

    const again = rec.suite('re-apply');
    await rec.run(again, 're-apply makes 0 changes', async () => {
      const r = await runApply(copyFile, { yes: true, knownHosts: join(work, 'known_hosts'), say: (l) => opts.log(`  ${l}`) }, 'apply');
      process.exitCode = 0;
      if (!r.ok) return { fail: applyDetail(r) };
      if (r.changes === 0) return '0 changes';
      const what = r.hosts.flatMap((h) => (h.plan ?? []).map((c) => `${h.name}: ${c.kind} ${c.action} ${'path' in c ? c.path : 'unit' in c ? c.unit : 'name' in c ? c.name : ''}`));
      return { fail: `${r.changes} change${r.changes === 1 ? '' : 's'} on a converged host: ${what.join('; ') || `DNS: ${r.dns?.changes ?? 0} record sets`}` };
    });
    return finish();
  } catch (e) {
    if (e instanceof Interrupted) return finish();
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (world && !opts.keep) {
      opts.log('removing the throwaway containers...');
      await world.stop();
    } else if (world) opts.log(`kept: the containers start with ${prefix}- (remove them with: docker rm -f $(docker ps -aq --filter name=^${prefix}-); docker network rm ${world.network})`);
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
    else opts.log(`the throwaway playbook, its state and the SSH key: ${work}`);
  }

  function finish(): TestReport {
    const failed = rec.suites.some((s) => s.cases.some((c) => c.status === 'failed'));
    return { ok: !failed && !rec.interrupted, ...(rec.interrupted ? { interrupted: true } : {}), playbook: file, ...(opts.base ? { base: opts.base.name } : {}), seconds: (Date.now() - t0) / 1000, notes, suites: rec.suites };
  }
}

function portOf(h: VpsHost, p: number): number {
  const mapped = h.ports[p];
  if (mapped === undefined) throw new Error(`port ${p} of ${h.name} is not published`);
  return mapped;
}

/**
 * A playbook text validated as apply validates it (secrets must be readable), under `file`'s directory so
 * its relative file references mean the same. A bad playbook throws PlaybookError before any container starts.
 */
export function loadPlaybookText(file: string, text: string): Site {
  const r = checkSite(file, { secrets: 'error' }, text);
  if (!r.ok) throw new PlaybookError(r.diagnostics);
  return r.site;
}

/** Messages carrying `token` in a mailbox, read over IMAP (or POP3 when IMAP is off). */
type Finder = (address: string, token: string) => Promise<number>;

/**
 * Where a message that did not arrive is, said from inside the hosts: in which mailbox host's store it is (a
 * replicated site reads the first host), what the hosts' mail queues hold, and the last lines of the
 * replication push where it runs.
 */
type Diagnose = (address: string, token: string) => Promise<string>;

/** The last `n` lines of a command's output that are not blank, joined on one line. */
const lastLines = (text: string, n: number) => text.trim().split('\n').filter((l) => l.trim()).slice(-n).join(' | ');

function diagnoser(w: World, site: Site, containerOf: (h: Host) => string): Diagnose {
  return async (address, token) => {
    const said: string[] = [];
    const stores = site.hosts.filter((h) => h.role !== 'backup-mx');
    const where: string[] = [];
    for (const h of stores) {
      // Any folder (Junk too): `mailbox=<name>` a line per copy.
      const r = await w.exec(containerOf(h), `doveadm -f flow fetch -u ${shq(address)} mailbox subject ${shq(token)}`);
      const folders = r.code === 0 ? [...r.stdout.matchAll(/mailbox=(.*)/g)].map((x) => x[1]!.trim()) : [];
      if (folders.length) where.push(`${h.name} (${folders.join(', ')})`);
    }
    said.push(where.length ? `it is in ${address}'s store on ${where.join(', ')}` : `it is in no store of ${address} (${stores.map((h) => h.name).join(', ')})`);
    // The hosts' queues, and the sender's: what the peer holds back for the site's hosts, and why.
    const queues = [...site.hosts.map((h) => [`${h.name}'s`, containerOf(h)] as const), ...(w.peer ? [["the peer's", w.peer.container] as const] : [])];
    for (const [whose, container] of queues) {
      const q = await w.exec(container, 'mailq 2>&1 | tail -n 12');
      const text = lastLines(q.stdout || q.stderr, 12);
      if (text && !/Mail queue is empty/.test(text)) said.push(`${whose} mail queue: ${text}`);
    }
    if (site.stack.replication) said.push(...(await replicationLogs(w, site, containerOf)));
    return said.join('; ');
  };
}

/**
 * What the mailbox hosts of a replicated site say of their replication: the push's last lines, the heal
 * timer's (the second host), the users whose last sync failed in Dovecot's replicator, and dsync's last errors.
 */
async function replicationLogs(w: World, site: Site, containerOf: (h: Host) => string): Promise<string[]> {
  const said: string[] = [];
  for (const h of site.hosts.filter((x) => x.role !== 'backup-mx')) {
    const c = containerOf(h);
    const push = await w.exec(c, 'systemctl is-active mailops-replica-push >/dev/null 2>&1 && journalctl -u mailops-replica-push -n 12 --no-pager -o cat 2>&1');
    if (push.code === 0) said.push(`${h.name}'s replication push: ${lastLines(push.stdout, 12) || 'nothing logged'}`);
    const heal = await w.exec(c, 'systemctl cat mailops-replica.timer >/dev/null 2>&1 && journalctl -u mailops-replica -n 40 --no-pager -o cat 2>&1 | grep -v -e "^Starting " -e "^Finished " -e "Deactivated successfully"');
    if (heal.stdout.trim()) said.push(`${h.name}'s heal timer: ${lastLines(heal.stdout, 8)}`);
    const failing = await w.exec(c, "doveadm -f tab replicator status '*' 2>/dev/null | awk -F '\t' 'NR > 1 && $6 == \"y\" { print $1 }'");
    if (failing.stdout.trim()) said.push(`${h.name}'s replicator: the last sync failed for ${lastLines(failing.stdout, 20).replaceAll(' | ', ', ')}`);
    const dsync = await w.exec(c, 'journalctl -u dovecot -n 400 --no-pager -o cat 2>&1 | grep -i -e dsync -e "doveadm(" | grep -i -e error -e fatal -e warning');
    if (dsync.stdout.trim()) said.push(`${h.name}'s dsync errors: ${lastLines(dsync.stdout, 4)}`);
  }
  return said;
}

/** Messages carrying `token` in a mailbox, found by Dovecot on the host itself (a site with no IMAP and no POP3). */
async function storeFind(w: World, container: string, address: string, token: string): Promise<number> {
  const r = await w.exec(container, `doveadm search -u ${shq(address)} mailbox INBOX subject ${shq(token)}`);
  if (r.code !== 0) throw new Error(`doveadm search for ${address} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.split('\n').filter((l) => l.trim()).length;
}

async function findIn(site: Site, ep: Ep, address: string, token: string): Promise<number> {
  const pw = passwordOf(site, address);
  return site.stack.imap ? imapFind(ep, address, pw, token) : pop3Find(ep, address, pw, token);
}

async function runCases(rec: Recorder, suite: Suite, site: Site, cases: TestCase[], reader: Ep, find: Finder, epOf: (h: Host) => Ep, peer: WorldPeer, diagnose: Diagnose): Promise<void> {
  const mx = epOf(site.hosts.find((h) => h.role !== 'backup-mx') ?? site.hosts[0]!);
  const submit = reader;
  const verifyUses = verifySubmissions(site);
  // The stranger's RCPT probes share a session, as its MTA would (RcptProber): one probe at a time.
  const stranger = new RcptProber(mx, 'mx.peer.test');
  const oneAtATime = pLimit(1);
  const probe = (to: string) => oneAtATime(() => stranger.probe(STRANGER, to));
  // What is forwarded outside lands at the peer: every waiter shares one read of its inbox a second.
  const atPeer = inboxWatch(peer);
  const check = async (c: TestCase): ReturnType<CaseFn> => {
    switch (c.kind) {
      case 'skip':
        return { skip: c.reason };
      case 'login': {
        const pw = passwordOf(site, c.mailbox);
        let reply: string;
        try {
          if (c.protocol === 'imap') reply = await imapSession(reader, c.mailbox, pw, async () => 'OK');
          else if (c.protocol === 'pop3') reply = `+OK (${await pop3Stat(reader, c.mailbox, pw)} messages)`;
          else {
            // AUTH and MAIL FROM, no RCPT: a send_limit counts recipients, and its own case proves it.
            const r = await smtpTransaction(submit, { port: 587, auth: { user: c.mailbox, password: pw }, from: c.mailbox, to: [], rcptOnly: true });
            if (r.stage === 'auth') throw new Error(r.reply.text);
            reply = '235 authenticated';
          }
        } catch (e) {
          if (c.expect === 'refused') return `refused: ${(e as Error).message}`;
          throw e;
        }
        return c.expect === 'ok' ? reply : { fail: `the login of a disabled mailbox was accepted (${reply})` };
      }
      case 'deliver': {
        // What a stranger's MTA hears at RCPT, at once (a refusal would otherwise show only as a bounce).
        const rcpt = await probe(c.to);
        if (rcpt.stage !== 'done') return { fail: `RCPT TO:<${c.to}> from a stranger on port 25 answered "${rcpt.reply.text}"` };
        const token = newToken();
        await peer.send({ from: STRANGER, to: c.to, subject: `mailops test [${token}]` });
        const seen: string[] = [];
        for (const m of c.mailboxes) {
          // A delivery the host refused comes back to the stranger at the peer as a bounce: no need to wait on.
          let bounced: string | undefined;
          const arrived = async () => {
            if ((await find(m, token)) > 0) return true;
            const dsn = await atPeer((raw) => raw.includes(token) && bounceFor(raw, m) !== undefined, 0);
            bounced = dsn === undefined ? undefined : bounceFor(dsn, m);
            return bounced !== undefined;
          };
          const so = seen.length ? ` (delivered to ${seen.join(', ')})` : '';
          if (!(await until(arrived, DELIVERY_MS))) return { fail: `not delivered to ${m} within ${DELIVERY_MS / 1000} s${so}: ${await diagnose(m, token)}` };
          if (bounced !== undefined) return { fail: `not delivered to ${m}${so}: the sender got a bounce, "${bounced}"` };
          const n = await find(m, token);
          if (n !== 1) return { fail: `delivered ${n} times to ${m}` };
          seen.push(m);
        }
        for (const o of c.outside) {
          const raw = await atPeer((m) => m.includes(token) && m.toLowerCase().includes(o.toLowerCase()), Date.now() + DELIVERY_MS);
          if (raw === undefined) return { fail: `not forwarded to ${o} (the peer received nothing for it within ${DELIVERY_MS / 1000} s)` };
          seen.push(`${o} (at the peer)`);
        }
        if (!seen.length) return { fail: `${c.to} delivers to no one` };
        return `delivered once to ${seen.join(', ')}`;
      }
      case 'refused-rcpt': {
        const r = await probe(c.to);
        const reply = r.rcpts[0]?.text ?? r.reply.text;
        return reply.startsWith(c.expect) ? reply : { fail: `RCPT TO:<${c.to}> answered "${reply}", expected ${c.expect}` };
      }
      case 'send-as': {
        const r = await smtpTransaction(submit, { port: 587, auth: { user: c.login, password: passwordOf(site, c.login) }, from: c.from, to: [STRANGER], rcptOnly: true });
        if (r.stage === 'auth') return { fail: `login refused: ${r.reply.text}` };
        if (c.allowed) return r.stage === 'done' ? `MAIL FROM:<${c.from}> and RCPT accepted` : { fail: `refused at ${r.stage.toUpperCase()}: ${r.reply.text}` };
        return r.stage === 'done' ? { fail: `MAIL FROM:<${c.from}> was accepted for ${c.login}` } : r.reply.code >= 500 ? `refused at ${r.stage.toUpperCase()}: ${r.reply.text}` : { fail: `answered "${r.reply.text}" (not a 5xx)` };
      }
      case 'send-off': {
        const r = await smtpTransaction(submit, { port: 587, auth: { user: c.login, password: passwordOf(site, c.login) }, from: c.login, to: [STRANGER], rcptOnly: true });
        return r.stage !== 'done' && r.reply.text.startsWith('550 5.7.1') ? `refused at ${r.stage.toUpperCase()}: ${r.reply.text}` : { fail: `answered "${r.reply.text}" at ${r.stage}, expected 550 5.7.1` };
      }
      case 'send-limit': {
        // verify may have submitted as this login already in this run (its only sender of a domain): the
        // window then holds up to that many recipients, and this probe gets the rest.
        const used = Math.min(c.count, verifyUses.get(c.login) ?? 0);
        const before = used ? ` (verify submitted up to ${used} as ${c.login} in this run)` : '';
        let accepted = 0;
        for (let i = 0; i <= c.count; i++) {
          const r = await smtpTransaction(submit, { port: 587, auth: { user: c.login, password: passwordOf(site, c.login) }, from: c.login, to: [STRANGER], rcptOnly: true });
          if (r.stage === 'done') {
            accepted++;
            continue;
          }
          if (!r.reply.text.startsWith('450 4.7.1')) return { fail: `after ${accepted} accepted, answered "${r.reply.text}", expected 450 4.7.1` };
          if (accepted < c.count - used) return { fail: `refused after ${accepted} accepted, below the limit of ${c.count}/${c.per}${before}: ${r.reply.text}` };
          return `${accepted} accepted${before}, then: ${r.reply.text}`;
        }
        return { fail: `${accepted} recipients accepted: the limit of ${c.count}/${c.per} was not enforced` };
      }
      case 'quota': {
        const q = await imapQuota(reader, c.mailbox, passwordOf(site, c.mailbox));
        return q === c.bytes ? `GETQUOTAROOT: STORAGE limit ${q} bytes` : { fail: `IMAP reports ${q === undefined ? 'no storage limit' : `${q} bytes`}, expected ${c.bytes}` };
      }
    }
  };
  try {
    // Each case waits on mail and logins, so they run CHECK_LANES at a time; the send_limit cases count
    // what is submitted as their login, so they run last, one after another.
    const last = (c: TestCase) => c.kind === 'send-limit' || c.kind === 'skip';
    await rec.runAll(suite, cases.filter((c) => !last(c)).map((c) => ({ name: c.name, f: () => check(c) })), CHECK_LANES);
    for (const c of cases.filter(last)) await rec.run(suite, c.name, () => check(c));
  } finally {
    stranger.close();
  }
}
