/**
 * One host, end to end: connect → facts (one round trip) → plan (pure) → [diff contents] → activation.
 * `plan` and `apply` share this path; plan stops before the activation.
 */
import { randomBytes } from 'node:crypto';
import { UserError } from '../errors.js';
import { factScript } from '../facts/script.js';
import { parseFacts } from '../facts/parse.js';
import { shqAll } from '../facts/shell.js';
import type { DesiredHost } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';
import type { HostPlan } from '../model/plan.js';
import type { Host, OsFamily } from '../model/site.js';
import { plan } from '../plan/plan.js';
import { hostTextWanted } from '../plan/diff.js';
import type { Connection, ExecResult } from '../ssh/connection.js';
import { MARK, STATE_DIR, activationCommand, activationScript, stagedFiles } from './script.js';
import { LOCK_FILE } from '../facts/shell.js';
import { payload } from './payload.js';
import { describeFailures, parseReport } from './report.js';
import type { ActivationReport } from './report.js';
import { answerDigest } from './memo.js';
import type { DkimKeyState } from '../plan/dkim.js';

export interface Planned {
  host: Host;
  conn: Connection;
  /** A new connection to the same host (after the first one dropped). */
  reconnect?: () => Promise<Connection>;
  desired: DesiredHost;
  facts: HostFacts;
  plan: HostPlan;
  /** The fact script whose answer the facts are, and the SHA-256 of that answer (src/apply/memo.ts). */
  answer?: { script: string; digest: string };
  /**
   * Planned from the no-op memo (src/apply/memo.ts): the host answered as when it was last found up to date,
   * so it was not rendered and planned again; desired and facts are made only when something reads them.
   */
  memo?: { dkim: Array<DkimKeyState & { publicKey: string }>; tlsFingerprint?: string };
}

export type Progress = (host: string, step: string) => void;

/**
 * Gather facts and plan. `byFamily` is the desired state for each family the host may be (one when the
 * playbook says); `refine` renders it again from the facts (the DKIM keys the host holds). When that
 * changes what the facts must cover, they are gathered once more for it.
 */
export async function planHost(
  host: Host,
  conn: Connection,
  byFamily: Partial<Record<OsFamily, DesiredHost>>,
  progress: Progress,
  refine?: (family: OsFamily, facts: HostFacts) => Promise<DesiredHost>,
  /** The host's answer to a fact script, already asked: taken when the same script is asked again. */
  prefetched?: { script: string; result: ExecResult },
): Promise<Planned> {
  progress(host.name, 'gathering facts');
  let answer: Planned['answer'];
  const gather = async (script: string): Promise<HostFacts> => {
    const r = prefetched?.script === script ? prefetched.result : await conn.exec(script, { step: 'gather facts', prefetch: true });
    prefetched = undefined;
    answer = { script, digest: answerDigest(r.stdout) };
    try {
      return { ...parseFacts(r.stdout), gatheredAt: Math.floor(Date.now() / 1000) };
    } catch {
      throw new UserError(`host ${host.name}: gathering facts failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ') || 'no output'}`);
    }
  };
  const first = factScript(byFamily);
  let facts = await gather(first);
  if (!facts.family) throw new UserError(`host ${host.name}: unsupported OS "${facts.osName}": mailops manages Debian/Ubuntu and RHEL-family (CentOS Stream, AlmaLinux, Rocky) hosts`);
  if (host.os !== 'auto' && host.os !== facts.family) {
    throw new UserError(`host ${host.name}: the playbook says os: ${host.os}, but the host runs ${facts.osName} (${facts.family}); fix hosts[].os or use auto`);
  }
  const family = facts.family;
  let desired = byFamily[family];
  if (!desired) {
    if (!refine) throw new Error(`internal: no desired state for family ${family}`);
    // Not the family the state recorded (a host made again with another OS): its facts once more, for the family it is.
    desired = await refine(family, facts);
    facts = await gather(factScript({ [family]: desired }));
  }
  if (refine) {
    const refined = await refine(family, facts);
    const script = factScript({ [family]: refined });
    // The script the facts came from: the first, when it was this family's alone.
    const asked = Object.keys(byFamily).length === 1 && byFamily[family] === desired ? first : factScript({ [family]: desired });
    if (script !== asked) facts = await gather(script);
    desired = refined;
  }
  let p = plan(desired, facts);
  // Diffs need the current text of changed, non-secret files: one more round trip, only when something changed.
  // Secret files in the users-file format too: the plan shows their per-mailbox changes, never a hash.
  const wanted = hostTextWanted(desired, p);
  if (wanted.length) {
    progress(host.name, 'reading changed files');
    const got = await conn.exec(`for f in ${shqAll(wanted)}; do printf '@@mailops file %s\\n' "$f"; base64 < "$f" | tr -d '\\n'; echo; done`);
    const lines = got.stdout.split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      const m = /^@@mailops file (.+)$/.exec(lines[i]!);
      const fact = m ? facts.files[m[1]!] : undefined;
      if (m && fact) fact.content = Buffer.from(lines[i + 1]!, 'base64').toString('utf8');
    }
    p = plan(desired, facts);
  }
  p.os = facts.osName;
  if (facts.locked) p.warnings.push('another mailops apply is running on this host right now');
  return { host, conn, desired, facts, plan: p, ...(answer ? { answer } : {}) };
}

export interface Applied {
  report: ActivationReport;
  /** The activation did not finish cleanly: what failed, with the checkers' messages. */
  error?: string;
  /** The connection dropped during the run; mailops reconnected and read the result from the host. */
  recovered?: boolean;
}

const emptyReport = (): ActivationReport => ({ result: 'ok', steps: [], failures: [], dkim: [], warnings: [] });

/** What each result means for the host, in words. */
export function outcomeWords(result: ActivationReport['result']): string {
  switch (result) {
    case 'rolled-back':
      return 'failed; the previous configuration was restored and its services run';
    case 'rollback-failed':
      return 'failed; the previous files are back but not every service came back up: see below';
    case 'interrupted':
      return 'was interrupted on the host (killed or rebooted) before it finished: run mailops plan to see what it left behind';
    case 'failed':
      return 'failed before anything was activated (packages may have been installed; no daemon was started with them)';
    default:
      return 'ended without a result: the host may hold the old or the new configuration; run mailops plan';
  }
}

/**
 * After the connection dropped during the run: reconnect, wait for the run to end (its lock is released
 * when it finishes or dies) and read its log, so the report says what really happened on the host.
 */
async function recover(pl: Planned, runId: string, progress: Progress, deadlineMs = 15 * 60_000): Promise<string | undefined> {
  if (!pl.reconnect) return undefined;
  const until = Date.now() + deadlineMs;
  const run = `${STATE_DIR}/runs/${runId}`;
  for (let attempt = 1; Date.now() < until; attempt++) {
    try {
      progress(pl.host.name, `connection lost: reconnecting (${attempt})`);
      const conn = await pl.reconnect();
      try {
        const r = await conn.exec(`flock -w 900 ${LOCK_FILE} true; cat ${run}/log 2>/dev/null; printf '\n${MARK} journal %s\n' "$(cat ${run}/journal 2>/dev/null)"`, { step: 'read the result of the interrupted run' });
        return r.stdout;
      } finally {
        await conn.close().catch(() => undefined);
      }
    } catch {
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
  return undefined;
}

export async function applyHost(pl: Planned, digest: string, progress: Progress): Promise<Applied> {
  if (pl.plan.changes.length === 0) return { report: emptyReport() };
  const script = activationScript({ desired: pl.desired, facts: pl.facts, plan: pl.plan, digest });
  const files = stagedFiles(pl.desired, pl.plan).map((f) => ({ path: f.path, content: f.content }));
  const tar = await payload(script, files);
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
  let buffered = '';
  let stdout: string;
  let stderr = '';
  let code: number;
  let recovered = false;
  try {
    const r = await pl.conn.exec(activationCommand(runId), {
      stdin: tar,
      step: 'activation',
      onStdout: (chunk) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const m = /^@@mailops step (.*)$/.exec(line);
          if (m) progress(pl.host.name, m[1]!);
        }
      },
    });
    ({ stdout, stderr, code } = r);
  } catch (e) {
    // The run goes on without us (it ignores SIGHUP): find out how it ended instead of guessing.
    const log = await recover(pl, runId, progress);
    if (log === undefined) {
      throw new UserError(`${(e as Error).message}\nmailops could not reconnect to read the result: the run may have finished on the host; run mailops plan to see the host as it is`);
    }
    stdout = log;
    recovered = true;
    const r0 = parseReport(log);
    code = r0.result === 'ok' ? 0 : 1;
    if (r0.result === 'unknown') {
      const phase = /^@@mailops journal (.*)$/m.exec(log)?.[1]?.trim() || 'not started';
      stdout += `\n${MARK} fail connection the connection dropped and the run on the host stopped during "${phase}" without a result (killed or rebooted): run mailops plan to see what it left behind\n`;
    }
  }
  const report = parseReport(stdout);
  const note = recovered ? ' (the connection dropped during the run; mailops reconnected and read its result on the host)' : '';
  if (report.result === 'ok' && code === 0) return { report, ...(recovered ? { recovered } : {}) };
  const why = describeFailures(report) || stderr.trim() || `the activation script exited with ${code}`;
  return { report, ...(recovered ? { recovered } : {}), error: `host ${pl.host.name}: apply ${outcomeWords(report.result)}${note}:\n${why}` };
}
