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
import type { Connection } from '../ssh/connection.js';
import { activationCommand, activationScript, stagedFiles } from './script.js';
import { payload } from './payload.js';
import { describeFailures, parseReport } from './report.js';
import type { ActivationReport } from './report.js';

export interface Planned {
  host: Host;
  conn: Connection;
  desired: DesiredHost;
  facts: HostFacts;
  plan: HostPlan;
}

export type Progress = (host: string, step: string) => void;

/** Gather facts and plan. `byFamily` is the desired state for each family the host may be (one when the playbook says). */
export async function planHost(host: Host, conn: Connection, byFamily: Partial<Record<OsFamily, DesiredHost>>, progress: Progress): Promise<Planned> {
  progress(host.name, 'gathering facts');
  const r = await conn.exec(factScript(byFamily));
  let facts: HostFacts;
  try {
    facts = parseFacts(r.stdout);
  } catch {
    throw new UserError(`host ${host.name}: gathering facts failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ') || 'no output'}`);
  }
  if (!facts.family) throw new UserError(`host ${host.name}: unsupported OS "${facts.osName}": mailops manages Debian/Ubuntu and RHEL-family (CentOS Stream, AlmaLinux, Rocky) hosts`);
  if (host.os !== 'auto' && host.os !== facts.family) {
    throw new UserError(`host ${host.name}: the playbook says os: ${host.os}, but the host runs ${facts.osName} (${facts.family}); fix hosts[].os or use auto`);
  }
  const desired = byFamily[facts.family];
  if (!desired) throw new Error(`internal: no desired state for family ${facts.family}`);
  let p = plan(desired, facts);
  // Diffs need the current text of changed, non-secret files: one more round trip, only when something changed.
  const wanted = p.changes.filter((c) => c.kind === 'file' && c.action === 'update' && !c.secret).map((c) => (c as { path: string }).path);
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
  return { host, conn, desired, facts, plan: p };
}

export interface Applied {
  report: ActivationReport;
  /** The activation did not finish cleanly: what failed, with the checkers' messages. */
  error?: string;
}

export async function applyHost(pl: Planned, digest: string, progress: Progress): Promise<Applied> {
  if (pl.plan.changes.length === 0) return { report: { result: 'ok', steps: [], failures: [], dkim: [] } };
  const script = activationScript({ desired: pl.desired, facts: pl.facts, plan: pl.plan, digest });
  const files = stagedFiles(pl.desired, pl.plan).map((f) => ({ path: f.path, content: f.content }));
  const tar = await payload(script, files);
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
  let buffered = '';
  const r = await pl.conn.exec(activationCommand(runId), {
    stdin: tar,
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
  const report = parseReport(r.stdout);
  if (report.result === 'ok' && r.code === 0) return { report };
  const why = describeFailures(report) || r.stderr.trim() || `the activation script exited with ${r.code}`;
  const what = report.result === 'rolled-back' ? 'failed; the previous configuration was restored' : 'failed; nothing was activated';
  return { report, error: `host ${pl.host.name}: apply ${what}:\n${why}` };
}
