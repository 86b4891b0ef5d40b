/**
 * plan(desired, facts): what apply must change on one host. Pure and synchronous: the facts are an
 * argument, so it cannot fetch anything; every no-op is a fact that matches.
 */
import { createHash } from 'node:crypto';
import type { CertGuard, DesiredHost, GroupGuard } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';
import type { Change, HostPlan } from '../model/plan.js';
import { fileDiff } from './diff.js';
import { interruptedRuns } from './interrupted.js';

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const octal = (m: string) => parseInt(m, 8);

/** "reload postfix" → { action, key }. */
export function parseNotify(n: string): { action: 'reload' | 'restart'; key: string } {
  const [action, ...rest] = n.trim().split(/\s+/);
  if ((action !== 'reload' && action !== 'restart') || rest.length !== 1) throw new Error(`internal: bad notify "${n}" (expected "reload <service>" or "restart <service>")`);
  return { action, key: rest[0]! };
}

/**
 * Whether the host's certificate is the one a certificate command would make: it names exactly these
 * (in this order, unless any order will do) and is valid `days` days after the facts were gathered, as
 * `openssl verify -attime` tests it in the command's `unless`.
 */
export function certGuardHolds(g: CertGuard, facts: HostFacts): boolean {
  const c = facts.tlsCert;
  if (!c || facts.gatheredAt === undefined) return false;
  const at = facts.gatheredAt + g.days * 86400;
  if (at > c.notAfter || at < c.notBefore) return false;
  const have = g.anyOrder ? [...c.names].sort() : c.names;
  const want = g.anyOrder ? [...g.names].sort() : g.names;
  return have.length === want.length && have.every((n, i) => n === want[i]);
}

/**
 * Whether every file the guard names belongs to its group, as the facts' stat read them: a glob (`*` in the
 * last part, not matching a leading dot, as the shell's) asks for the files it matched, none when it matched
 * none; a named path the stat did not report (missing) does not hold.
 */
export function groupGuardHolds(g: GroupGuard, facts: HostFacts): boolean {
  const escape = (x: string) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  return g.paths.every((p) => {
    if (!p.includes('*')) return facts.directories[p]?.group === g.group;
    const re = new RegExp(`^${p.split('*').map(escape).join('*').replace(/(\/?)\*/g, (_m, slash: string) => `${slash}${slash ? '(?!\\.)' : ''}[^/]*`)}$`);
    return Object.entries(facts.directories).every(([path, st]) => !re.test(path) || st.group === g.group);
  });
}

export function plan(desired: DesiredHost, facts: HostFacts): HostPlan {
  const changes: Change[] = [];
  const warnings: string[] = [];
  const notified = new Map<string, { action: 'reload' | 'restart'; why: string }>();
  const notify = (names: string[], why: string) => {
    for (const n of names) {
      const { action, key } = parseNotify(n);
      const prev = notified.get(key);
      if (!prev || (prev.action === 'reload' && action === 'restart')) notified.set(key, { action, why });
    }
  };

  for (const name of desired.packages) if (facts.packages[name] === undefined) changes.push({ kind: 'package', action: 'install', name });

  for (const u of desired.users) {
    if (!facts.users[u.name]) changes.push({ kind: 'user', action: 'create', name: u.name, group: u.group, ...(u.uid !== undefined ? { uid: u.uid } : {}), home: u.home });
  }

  for (const d of desired.directories) {
    const f = facts.directories[d.path];
    if (!f) changes.push({ kind: 'directory', action: 'create', path: d.path, owner: d.owner, group: d.group, mode: d.mode, detail: 'missing' });
    else {
      const diffs = metaDiffs(f, d);
      if (diffs) changes.push({ kind: 'directory', action: 'update', path: d.path, owner: d.owner, group: d.group, mode: d.mode, detail: diffs });
    }
  }

  for (const file of desired.files) {
    const f = facts.files[file.path];
    const base = { kind: 'file' as const, path: file.path, owner: file.owner, group: file.group, mode: file.mode, secret: file.secret, component: file.component };
    if (!f) {
      changes.push({ ...base, action: 'create', diff: fileDiff(file.path, undefined, file.content, file.secret) });
      notify(file.notify, `${file.path} created`);
    } else if (f.sha256 !== sha256(file.content)) {
      changes.push({ ...base, action: 'update', diff: fileDiff(file.path, f.content, file.content, file.secret, f.sha256) });
      notify(file.notify, `${file.path} changed`);
    } else {
      const diffs = metaDiffs(f, file);
      if (diffs) changes.push({ ...base, action: 'metadata', diff: `${file.path}: ${diffs}` });
    }
  }

  // Files of a feature that is off: removed when the host has them (backed up first, like every swap).
  for (const x of desired.retired.files) {
    if (facts.files[x.path]) changes.push({ kind: 'file', action: 'remove', path: x.path, component: x.component, reason: x.reason });
  }

  const done = new Set(facts.commandsDone);
  desired.commands.forEach((c, index) => {
    if (done.has(index) || (c.certGuard && certGuardHolds(c.certGuard, facts)) || (c.groupGuard && groupGuardHolds(c.groupGuard, facts))) return;
    changes.push({ kind: 'command', action: 'run', name: c.name, index, component: c.component });
    notify(c.notify, c.name);
  });

  // The other MTA: stopped and disabled before ours takes the ports; its queue is not silently dropped.
  for (const x of desired.replaces) {
    const f = facts.services[x.unit];
    if (f && (f.active === 'active' || f.enabled === 'enabled')) {
      changes.push({ kind: 'service', action: 'stop-disable', unit: x.unit, key: x.unit, reason: `${desired.components.find((c) => c === x.component) ?? x.component} replaces it` });
    }
    const queued = x.queue === undefined ? 0 : (facts.queues[x.queue] ?? 0);
    if (queued > 0) {
      warnings.push(`${queued} message${queued === 1 ? '' : 's'} wait in the ${x.queue} queue, which ${x.component} does not deliver: flush it first (${x.queue === 'exim' ? 'exim -qff' : 'postqueue -f'}) or they stay in its spool`);
    }
  }
  // Services of a feature that is off: stopped and disabled (after the reloads that stop using them).
  for (const x of desired.retired.units) {
    const f = facts.services[x.unit];
    if (f && (f.active === 'active' || f.enabled === 'enabled')) changes.push({ kind: 'service', action: 'stop-disable', unit: x.unit, key: x.unit, reason: x.reason });
  }
  for (const s of desired.services) {
    const f = facts.services[s.unit] ?? { enabled: 'not-found', active: 'inactive' };
    if (f.enabled !== 'enabled' && f.enabled !== 'static' && f.enabled !== 'alias') {
      changes.push({ kind: 'service', action: 'enable', unit: s.unit, key: s.key, reason: `unit file state is ${f.enabled}` });
    }
    const n = notified.get(s.key);
    if (f.active !== 'active') changes.push({ kind: 'service', action: 'start', unit: s.unit, key: s.key, reason: `it is ${f.active}` });
    else if (n) changes.push({ kind: 'service', action: n.action, unit: s.unit, key: s.key, reason: n.why });
  }
  for (const key of notified.keys()) {
    if (!desired.services.some((s) => s.key === key)) throw new Error(`internal: notify names unknown service "${key}"`);
  }

  const interrupted = interruptedRuns(desired, facts, changes);
  changes.push(...interrupted.changes);
  warnings.push(...interrupted.warnings);
  return {
    host: desired.host.name,
    family: desired.os.family,
    dovecot: desired.os.dovecot,
    os: '',
    changes,
    warnings,
    ...(desired.dkimNotes.length ? { notes: desired.dkimNotes } : {}),
    ports: desired.inbound,
  };
}

function metaDiffs(f: { mode: string; owner: string; group: string }, d: { mode: string; owner: string; group: string }): string {
  const out: string[] = [];
  if (octal(f.mode) !== octal(d.mode)) out.push(`mode ${f.mode} → ${d.mode}`);
  if (f.owner !== d.owner) out.push(`owner ${f.owner} → ${d.owner}`);
  if (f.group !== d.group) out.push(`group ${f.group} → ${d.group}`);
  return out.join(', ');
}
