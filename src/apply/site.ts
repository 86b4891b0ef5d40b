/**
 * plan/apply over every host of a site: planned in parallel, applied in phases (src/apply/order.ts: mailbox
 * hosts and backup MXs in the order that keeps their recipients in step), the hosts of a phase in parallel.
 * A failing host does not stop the others of its phase; it stops the phases after it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import type { DesiredHost } from '../model/desired.js';
import type { HostPlan } from '../model/plan.js';
import type { Host, OsFamily, Site } from '../model/site.js';
import { recordedPlatform, renderHosts } from '../render/site.js';
import { dovecotOf } from '../os/index.js';
import type { DovecotGeneration, Platform } from '../os/index.js';
import { resolveCredentials } from '../render/credentials.js';
import type { Credentials } from '../render/context.js';
import type { ConnectOptions, Connection } from '../ssh/connection.js';
import type { SiteState } from '../state/state.js';
import { domainOf, planDkim, record, stateDkim, takenBy, ownerOf } from '../plan/dkim.js';
import type { DkimKeyState, DkimPlan, HeldKey } from '../plan/dkim.js';
import type { HostFacts } from '../model/facts.js';
import { applyHost, planHost } from './host.js';
import { applyOrder, notAppliedReason, recipientChange, runPhases } from './order.js';
import type { Phase } from './order.js';
import type { Planned, Progress } from './host.js';
import { answerDigest, MEMO_SECONDS, memoKey, siteDigest, staysEmpty } from './memo.js';
import type { Memo, MemoEntry } from './memo.js';
import { parseFacts } from '../facts/parse.js';

export interface SiteRunOptions {
  hosts?: string[];
  /** How to reach each host (known_hosts, sandbox overrides...). */
  target: (host: Host) => ConnectOptions;
  connect: (opts: ConnectOptions) => Promise<Connection>;
  progress: Progress;
  /** The site state: which host holds which DKIM selector. */
  state?: SiteState;
  /**
   * TXT lookup for DKIM's publish-first rule: a new key signs only once this answers with it. The DNS
   * server mailops pushes to when there is one, else the system's resolver.
   */
  resolveTxt?: (name: string) => Promise<string[][]>;
  /** Domains whose DKIM keys are replaced by new ones (`mailops dkim rotate`). */
  rotate?: ReadonlySet<string>;
  /** Unix seconds (the DKIM lifecycle's clock); now when absent. */
  now?: number;
  /** The no-op memo (src/apply/memo.ts): hosts found up to date are not planned again while they answer the same. */
  memo?: Memo;
}

export interface HostOutcome {
  name: string;
  ok: boolean;
  changes: number;
  plan?: HostPlan;
  error?: string;
  /** The DKIM keys the host holds after the run, with their lifecycle and public halves. */
  dkim?: Array<DkimKeyState & { publicKey: string }>;
  /** The certificate the host's services present (SHA-256 hex). */
  tlsFingerprint?: string;
  /** What the run warned about (it went on). */
  warnings?: string[];
  /** Not applied because a host of an earlier phase failed (error says which and what this host keeps). */
  skipped?: boolean;
}

export function playbookDigest(site: Site): string {
  return createHash('sha256').update(readFileSync(site.file)).digest('hex').slice(0, 16);
}

export function selectHosts(site: Site, names: string[] | undefined): Host[] {
  if (!names || names.length === 0) return site.hosts;
  for (const n of names) if (!site.hosts.some((h) => h.name === n)) throw new UserError(`--host ${n}: no such host in the playbook (hosts: ${site.hosts.map((h) => h.name).join(', ')})`);
  return site.hosts.filter((h) => names.includes(h.name));
}

/** Desired state of a host for each OS family it may turn out to be. */
function candidates(site: Site, host: Host, dkim: DkimPlan, credentials: Credentials, state: SiteState | undefined): Partial<Record<OsFamily, DesiredHost>> {
  // What the state recorded of the host (its family and Dovecot; the facts correct it: refine). os: auto on
  // a host the state does not know: both families.
  const recorded = recordedPlatform(host, state);
  const fams: OsFamily[] = host.os === 'auto' && !state?.families?.[host.name] ? ['debian', 'rhel'] : [recorded.family];
  const out: Partial<Record<OsFamily, DesiredHost>> = {};
  for (const f of fams) out[f] = renderFor(site, host, f === recorded.family ? recorded : f, dkim, credentials, state);
  return out;
}

/** The platform a host turned out to be: its family, and its Dovecot (installed, else apt's candidate, else its release's). */
export function platformOf(family: OsFamily, facts: HostFacts): Platform {
  return { family, dovecot: dovecotOf({ id: facts.osId ?? '', versionId: facts.osVersion, installed: facts.packages['dovecot-core'] ?? facts.packages['dovecot'], candidate: facts.dovecotCandidate }) };
}

/** `dovecots`: the Dovecot generation of the other hosts (replication looks at its peer's); default, the state's. */
function renderFor(site: Site, host: Host, platform: OsFamily | Platform, dkim: DkimPlan, credentials: Credentials, state: SiteState | undefined, dovecots = state?.dovecot ?? {}): DesiredHost {
  const tls = state?.tls;
  return renderHosts(site, { hosts: [host.name], detectedOs: new Map([[host.name, platform]]), credentials, dkim: new Map([[host.name, dkim]]), ...(tls ? { tls } : {}), dovecots })[0]!;
}

/**
 * The platforms the hosts of this run turn out to have, as their facts come in. A replicated mailbox host
 * is rendered for its peer's Dovecot (2.4 refuses what 2.3's replicator asks, src/render/replication.ts):
 * when both are planned in this run, the peer's facts say it, not only what the state recorded, so a pair
 * whose one host was upgraded converges in one apply. A host that gave no facts leaves the state's word.
 */
function livePlatforms(site: Site, hosts: Host[]) {
  const known = new Map<string, { value: Promise<Platform | undefined>; settle: (p: Platform | undefined) => void }>();
  for (const h of hosts) {
    let settle!: (p: Platform | undefined) => void;
    const value = new Promise<Platform | undefined>((r) => (settle = r));
    known.set(h.name, { value, settle });
  }
  return {
    settle: (host: Host, p: Platform | undefined) => known.get(host.name)?.settle(p),
    /** The Dovecot generations to render `host` with: the state's, and those of its peers found in this run. */
    async dovecots(host: Host, state: SiteState | undefined): Promise<Record<string, DovecotGeneration>> {
      const out: Record<string, DovecotGeneration> = { ...(state?.dovecot ?? {}) };
      if (!site.stack.replication || host.role !== 'mailbox') return out;
      for (const peer of hosts.filter((h) => h.role === 'mailbox' && h.name !== host.name)) {
        const p = await known.get(peer.name)!.value;
        if (p) out[peer.name] = p.dovecot;
      }
      return out;
    },
  };
}

/** The DKIM lifecycle of a host from its facts; pending keys are switched on when DNS serves them. */
async function factsDkim(site: Site, host: Host, facts: HostFacts, opts: SiteRunOptions, now: number): Promise<DkimPlan> {
  const held: HeldKey[] = Object.entries(facts.dkim).map(([rec, k]) => ({ domain: domainOf(rec), selector: k.selector, algorithm: k.algorithm, bits: k.bits, publicKey: k.publicKey }));
  const input = { site, host, held, ...(facts.dkimLifecycle ? { lifecycle: facts.dkimLifecycle } : {}), taken: takenBy(site, host, opts.state), now, ...(opts.rotate ? { rotate: opts.rotate } : {}) };
  const first = planDkim({ ...input, served: () => false });
  const served = new Set<string>();
  for (const k of first.keys.filter((x) => x.status === 'pending')) {
    const key = facts.dkim[record(k)]?.publicKey;
    if (key && opts.resolveTxt && (await servesKey(opts.resolveTxt, record(k), key))) served.add(record(k));
  }
  return served.size ? planDkim({ ...input, served: (k) => served.has(record(k)) }) : first;
}

/** Whether DNS answers a DKIM record with this public key. */
export async function servesKey(resolveTxt: (name: string) => Promise<string[][]>, name: string, publicKey: string): Promise<boolean> {
  try {
    const answers = await resolveTxt(name);
    return answers.some((chunks) => /(?:^|;)\s*p=([^;]*)/.exec(chunks.join(''))?.[1]?.replace(/\s+/g, '') === publicKey);
  } catch {
    return false;
  }
}

const message = (e: unknown) => (e instanceof UserError ? e.message : `internal error: ${(e as Error)?.stack ?? String(e)}`);

/** Connect to every selected host and plan it. Connections stay open for apply; close them with closeAll. */
export async function planSite(site: Site, opts: SiteRunOptions): Promise<Array<{ host: Host; planned?: Planned; error?: string }>> {
  const hosts = selectHosts(site, opts.hosts);
  // The passwords are hashed once for every host and render (a failure is each host's error).
  let resolved: Credentials | undefined;
  const credentials = () => (resolved ??= resolveCredentials(site));
  // The no-op memo: not when keys are rotated, nor for a replicated pair's mailbox hosts (each is rendered
  // for the other's Dovecot, which that one's facts tell in this run).
  const memo = opts.rotate ? undefined : opts.memo;
  let inputs: string | null | undefined;
  const memoKeyOf = (host: Host): string | undefined => {
    if (!memo || (site.stack.replication && host.role === 'mailbox')) return undefined;
    if (inputs === undefined) {
      try {
        inputs = siteDigest(site, credentials(), opts.state);
      } catch {
        inputs = null; // a secret that cannot be read: each host says so as it is rendered
      }
    }
    return inputs === null ? undefined : memoKey(inputs, host);
  };
  // The hosts are rendered one after the other, each in a turn of the event loop of its own: between two,
  // the replies that came in are handled, so a host whose connection is up gets its fact script while the
  // next one is rendered.
  // The first waits one more turn: for the connections' requests to go out (a shared connection's is
  // written when its socket connects), so that the hosts start on their facts before anything is rendered.
  const nextTurn = () => new Promise((next) => setImmediate(next));
  let turn: Promise<unknown> = nextTurn();
  const live = livePlatforms(site, hosts);
  const results = await Promise.all(
    hosts.map(async (host) => {
      let conn: Connection | undefined;
      try {
        opts.progress(host.name, 'connecting');
        // The handshake goes on while the host's desired state is rendered.
        const connecting = opts.connect(opts.target(host));
        connecting.catch(() => undefined);
        const now = opts.now ?? Math.floor(Date.now() / 1000);
        const assumed = stateDkim(site, host, opts.state, now);
        const key = memoKeyOf(host);
        const entry = key ? memo!.find(host, key, now) : undefined;
        let prefetched: Parameters<typeof planHost>[5];
        if (entry) {
          // Asked as when it was last found up to date: the same answer is the same (empty) plan.
          conn = await connecting;
          opts.progress(host.name, 'gathering facts');
          const r = await conn.exec(entry.script, { step: 'gather facts', prefetch: true });
          if (answerDigest(r.stdout) === entry.answer) {
            live.settle(host, entry.platform);
            const planned = fromMemo(site, host, conn, entry, r.stdout, assumed, credentials, opts.state);
            planned.reconnect = () => opts.connect(opts.target(host));
            opts.progress(host.name, 'up to date (it answered as when last found so: not planned again)');
            return { host, planned };
          }
          prefetched = { script: entry.script, result: r };
        }
        const rendered = turn
          .then(nextTurn)
          .then(() => candidates(site, host, assumed, credentials(), opts.state));
        turn = rendered.catch(() => undefined);
        let byFamily: ReturnType<typeof candidates>;
        try {
          byFamily = await rendered;
        } finally {
          conn ??= await connecting;
        }
        // Whether the desired state is the one rendered from the state's record (what the memo can make again).
        let asRecorded: DkimPlan | undefined;
        const planned = await planHost(
          host,
          conn,
          byFamily,
          opts.progress,
          async (family, facts) => {
            const dkim = await factsDkim(site, host, facts, opts, now);
            // The keys the host holds are the ones the state recorded (every run but a key change): rendered
            // already; only what is said about them may differ.
            const key = (p: DkimPlan) => JSON.stringify({ keys: p.keys, remove: p.remove });
            // And the host's Dovecot is the one it was rendered for (a host of a newer release, or upgraded).
            const platform = platformOf(family, facts);
            live.settle(host, platform);
            const dovecots = await live.dovecots(host, opts.state);
            const same = Object.entries(dovecots).every(([h, g]) => opts.state?.dovecot?.[h] === g);
            const done = byFamily[family];
            if (done && done.os.dovecot === platform.dovecot && same && key(dkim) === key(assumed)) {
              asRecorded = dkim;
              return { ...done, dkimNotes: dkim.notes };
            }
            asRecorded = undefined;
            return renderFor(site, host, platform, dkim, credentials(), opts.state, dovecots);
          },
          prefetched,
        );
        // Planned without its facts rendering it (nothing to say of its platform): its peer waits no more.
        live.settle(host, undefined);
        planned.reconnect = () => opts.connect(opts.target(host));
        const kept = key ? await memoEntry(site, host, planned, asRecorded, key, now, opts) : null;
        if (kept) memo!.put(host, kept);
        opts.progress(host.name, planned.plan.changes.length ? `${planned.plan.changes.length} changes planned` : 'up to date');
        return { host, planned };
      } catch (e) {
        live.settle(host, undefined);
        await conn?.close().catch(() => undefined);
        opts.progress(host.name, 'failed');
        return { host, error: message(e) };
      }
    }),
  );
  memo?.save();
  return results;
}

/**
 * The memo's entry for a host just planned: when its plan is empty and stays so for MEMO_SECONDS (its
 * certificates valid then too, its DKIM keys all signing with nothing to say of them), its desired state
 * is the one the state's record renders, and its facts are one answer to one script. Else none: the
 * host's earlier entry stays (it holds for its own inputs and answer only; a playbook changed and then put
 * back finds it again).
 */
async function memoEntry(site: Site, host: Host, p: Planned, dkim: DkimPlan | undefined, key: string, now: number, opts: SiteRunOptions): Promise<MemoEntry | null> {
  const family = p.facts.family;
  if (!dkim || !p.answer || p.plan.changes.length || p.plan.notes?.length || (family !== 'debian' && family !== 'rhel')) return null;
  // The lifecycle an hour on (asked of no DNS: a key that waits for DNS is no reason to keep anything).
  const later = await factsDkim(site, host, p.facts, { ...opts, resolveTxt: undefined }, now + MEMO_SECONDS);
  if (!staysEmpty(p.desired, p.facts, dkim, later)) return null;
  return {
    key,
    script: p.answer.script,
    answer: p.answer.digest,
    until: now + MEMO_SECONDS,
    platform: platformOf(family, p.facts),
    plan: p.plan,
    dkim: heldKeys(p),
    ...tlsOf(p.facts.tlsFingerprint),
  };
}

/**
 * A host planned from its memo entry: the entry's (empty) plan; its facts and desired state made from its
 * answer and the state's record only when something reads them.
 */
function fromMemo(site: Site, host: Host, conn: Connection, entry: MemoEntry, stdout: string, assumed: DkimPlan, credentials: () => Credentials, state: SiteState | undefined): Planned {
  const gatheredAt = Math.floor(Date.now() / 1000);
  let facts: HostFacts | undefined;
  let desired: DesiredHost | undefined;
  const planned = {
    host,
    conn,
    plan: entry.plan,
    answer: { script: entry.script, digest: entry.answer },
    memo: { dkim: entry.dkim, ...tlsOf(entry.tlsFingerprint) },
  } as Planned;
  Object.defineProperty(planned, 'facts', { enumerable: true, get: () => (facts ??= { ...parseFacts(stdout), gatheredAt }) });
  Object.defineProperty(planned, 'desired', { enumerable: true, get: () => (desired ??= { ...renderFor(site, host, entry.platform, assumed, credentials(), state), dkimNotes: [] }) });
  return planned;
}

/** The phases apply runs the planned hosts in (src/apply/order.ts), from what their recipient maps gain and lose. */
export function planOrder(planned: Array<{ host: Host; planned?: Planned }>): Phase[] {
  // A host planned from its memo changes nothing: its recipients neither.
  return applyOrder(planned.map(({ host, planned: p }) => (p && !p.memo ? recipientChange(host, p.desired, p.facts) : { name: host.name, role: host.role, gained: [], lost: [] })));
}

/** Apply the planned hosts, phase after phase (planOrder); a phase runs only when the ones before it converged. */
export async function applyPlanned(site: Site, planned: Array<{ host: Host; planned?: Planned; error?: string }>, opts: Pick<SiteRunOptions, 'progress'>): Promise<HostOutcome[]> {
  const digest = playbookDigest(site);
  const byName = new Map(planned.map((x) => [x.host.name, x]));
  const skipped = (name: string, failed: string[]): HostOutcome => {
    const x = byName.get(name)!;
    opts.progress(name, `not applied (${failed.join(', ')} failed first)`);
    return { name, ok: false, skipped: true, changes: 0, ...(x.planned ? { plan: x.planned.plan } : {}), error: notAppliedReason(x.host, failed) };
  };
  const one = async (name: string): Promise<HostOutcome> => {
    const { host, planned: p, error } = byName.get(name)!;
    if (!p) return { name: host.name, ok: false, changes: 0, error: error ?? 'not planned' };
    try {
      const r = await applyHost(p, digest, opts.progress);
      opts.progress(host.name, r.error ? 'failed' : p.plan.changes.length ? `${p.plan.changes.length} changes applied` : 'up to date');
      return { name: host.name, ok: !r.error, changes: r.error ? 0 : p.plan.changes.length, plan: p.plan, ...(r.error ? {} : { dkim: heldKeys(p, r.report.dkim) }), ...tlsOf(r.report.tlsFingerprint ?? factsTls(p)), ...(r.report.warnings.length ? { warnings: r.report.warnings } : {}), ...(r.error ? { error: r.error } : {}) };
    } catch (e) {
      opts.progress(host.name, 'failed');
      return { name: host.name, ok: false, changes: 0, plan: p.plan, error: message(e) };
    }
  };
  return runPhases(planOrder(planned), planned.map((x) => x.host.name), one, skipped);
}

const tlsOf = (f: string | undefined) => (f ? { tlsFingerprint: f } : {});
/** The certificate the host presents, as its facts (or its memo entry) have it. */
const factsTls = (p: Planned) => (p.memo ? p.memo.tlsFingerprint : p.facts.tlsFingerprint);

/** The keys of the host's lifecycle with their public halves (as the run printed them, else as facts had them). */
function heldKeys(p: Planned, printed: Array<{ domain: string; selector: string; publicKey: string }> = []): NonNullable<HostOutcome['dkim']> {
  if (p.memo && printed.length === 0) return p.memo.dkim;
  const pub = new Map(printed.map((k) => [record(k), k.publicKey]));
  return p.desired.dkimKeys.flatMap((k) => {
    const publicKey = pub.get(record(k)) ?? p.facts.dkim[record(k)]?.publicKey;
    const { keyFile: _, ...rest } = k;
    return publicKey ? [{ ...rest, publicKey }] : [];
  });
}

export async function closeAll(planned: Array<{ planned?: Planned }>): Promise<void> {
  await Promise.all(planned.map((p) => p.planned?.conn.close().catch(() => undefined)));
}

/** The state as the hosts are now (before any apply): the DKIM keys and certificates their facts show. */
export function planState(site: Site, state: SiteState, planned: Array<{ host: Host; planned?: Planned }>): SiteState {
  const outcomes: HostOutcome[] = planned.flatMap((p) => (p.planned ? [{ name: p.host.name, ok: true, changes: 0, dkim: heldKeys(p.planned), ...tlsOf(factsTls(p.planned)) }] : []));
  return recordDkim(state, outcomes, site);
}

/** Record the DKIM public keys the hosts hold and their certificates' fingerprints in the site state (public data). */
export function recordDkim(state: SiteState, outcomes: HostOutcome[], site?: Site): SiteState {
  const next: SiteState = { ...state, dkim: { ...state.dkim }, tls: { ...state.tls } };
  for (const o of outcomes) {
    if (!o.dkim) continue;
    // The host's keys are what it reported: its earlier entries go (a key deleted after its grace).
    for (const [rec, e] of Object.entries(next.dkim)) if ((site ? ownerOf(site, rec, e) : e.host) === o.name) delete next.dkim[rec];
    for (const k of o.dkim) {
      next.dkim[record(k)] = { selector: k.selector, algorithm: k.algorithm, bits: k.bits, publicKey: k.publicKey, host: o.name, status: k.status, ...(k.since !== undefined && k.status === 'retired' ? { since: k.since } : {}) };
    }
  }
  // Keys of hosts the playbook no longer has are not published.
  if (site) for (const [rec, e] of Object.entries(next.dkim)) if (!site.hosts.some((h) => h.name === ownerOf(site, rec, e))) delete next.dkim[rec];
  for (const o of outcomes) {
    const hostname = site?.hosts.find((h) => h.name === o.name)?.hostname;
    if (hostname && o.tlsFingerprint) next.tls[hostname] = o.tlsFingerprint;
    const family = o.plan?.family;
    if (family === 'debian' || family === 'rhel') next.families = { ...next.families, [o.name]: family };
    const dovecot = o.plan?.dovecot;
    if (dovecot === '2.3' || dovecot === '2.4') next.dovecot = { ...next.dovecot, [o.name]: dovecot };
  }
  if (site && next.families) next.families = Object.fromEntries(Object.entries(next.families).filter(([h]) => site.hosts.some((x) => x.name === h)));
  if (site && next.dovecot) next.dovecot = Object.fromEntries(Object.entries(next.dovecot).filter(([h]) => site.hosts.some((x) => x.name === h)));
  return next;
}
