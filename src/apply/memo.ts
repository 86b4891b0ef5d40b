/**
 * The no-op memo: what planning a host found when it found nothing to change, kept on this machine, so
 * that a later plan or apply that asks the host the same question, from the same inputs, and gets the
 * same answer, does not render and plan that host again (the hosts of a no-op run cost the CLI ~5 ms each).
 *
 * It is sound because both halves are pure functions of what the key holds:
 * - the desired state, of the playbook (as loaded: the site model), the passwords' hashes, the site state
 *   (DKIM keys and certificates recorded), the host, mailops's build and its component playbooks and
 *   templates on disk (their sizes and times);
 * - the plan, of the desired state and the facts, which are the host's answer to the fact script: the
 *   entry keeps the script and the SHA-256 of the answer, and is used only when the host answers the same
 *   script with the same bytes. Any change on the host (a file, a service, a package, a queue) changes them.
 *
 * And of the time, which the key cannot hold. An entry is kept only when the plan stays empty an hour
 * later (certificates valid then too), when every DKIM key of the host signs (no key pending or retired,
 * whose lifecycle moves with time or with DNS) and nothing is said of them; and used for that hour only.
 * Not kept: hosts of a replicated pair (rendered for their peer's Dovecot, which its own facts tell), a
 * run that rotates DKIM keys.
 *
 * The file holds no secret: digests, the fact script (sent to the host as it is), public keys and the
 * certificate's fingerprint. It is in the user's cache directory ($XDG_CACHE_HOME/mailops/plans, else
 * ~/.cache/mailops/plans; mode 0600 in a 0700 directory), one per playbook; any error reading or writing it
 * is a run without it. MAILOPS_PLAN_MEMO=0 turns it off.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { stableHash } from '../crypto/password.js';
import type { HostPlan } from '../model/plan.js';
import type { Host, Site } from '../model/site.js';
import type { DkimKeyState, DkimPlan } from '../plan/dkim.js';
import type { DesiredHost } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';
import { plan } from '../plan/plan.js';
import type { Platform } from '../os/index.js';
import type { Credentials } from '../render/context.js';
import { RELAY_PASSWORD } from '../render/credentials.js';
import type { SiteState } from '../state/state.js';
import { packageRoot } from '../paths.js';
import { VERSION } from '../version.js';

/** How long an entry is used; it is kept only when the plan stays empty this long. */
export const MEMO_SECONDS = 3600;

export interface MemoEntry {
  /** The digest of the inputs (memoKey). */
  key: string;
  /** The fact script asked. */
  script: string;
  /** SHA-256 of the host's answer to it. */
  answer: string;
  /** Unix seconds: used until then. */
  until: number;
  platform: Platform;
  plan: HostPlan;
  /** The DKIM keys the host holds, with their public halves (what the state records). */
  dkim: Array<DkimKeyState & { publicKey: string }>;
  tlsFingerprint?: string;
}

/**
 * Whether a host found up to date stays so for MEMO_SECONDS whatever the clock says: every DKIM key signs,
 * with nothing to remove or say, and the same an hour on; and the plan is empty with the facts an hour
 * older (a certificate guard asks for validity some days after the facts were gathered).
 */
export function staysEmpty(desired: DesiredHost, facts: HostFacts, dkim: DkimPlan, later: DkimPlan): boolean {
  if (dkim.remove.length || dkim.notes.length || dkim.keys.some((k) => k.status !== 'signing')) return false;
  const shown = (p: DkimPlan) => JSON.stringify({ keys: p.keys, remove: p.remove, notes: p.notes });
  if (shown(later) !== shown(dkim)) return false;
  const at = facts.gatheredAt ?? Math.floor(Date.now() / 1000);
  return plan(desired, { ...facts, gatheredAt: at }).changes.length === 0 && plan(desired, { ...facts, gatheredAt: at + MEMO_SECONDS }).changes.length === 0;
}

export const answerDigest = (stdout: string): string => createHash('sha256').update(stdout).digest('hex');

/** The memo of a playbook, or null when there is none to keep (turned off, no home). */
export function memoFile(playbook: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (env['MAILOPS_PLAN_MEMO'] === '0') return null;
  const base = env['XDG_CACHE_HOME'] || (env['HOME'] || homedir() ? join(env['HOME'] || homedir(), '.cache') : '');
  if (!base) return null;
  return join(base, 'mailops', 'plans', `${createHash('sha256').update(playbook).digest('hex').slice(0, 24)}.json`);
}

/**
 * What mailops renders with, apart from the playbook: its version and build (dist/cli.js's time), and its
 * component playbooks and templates (the build compiles them, but an edited one is rendered from its text).
 */
function codeDigest(): string {
  const h = createHash('sha256').update(`${VERSION}\0${packageRoot}\0`);
  for (const path of [join(packageRoot, 'dist', 'cli.js')]) {
    try {
      const s = statSync(path, { bigint: true });
      h.update(`${path} ${s.mtimeNs} ${s.ctimeNs}\n`);
    } catch {
      h.update(`${path} -\n`);
    }
  }
  for (const dir of ['playbooks', 'templates']) {
    const root = join(packageRoot, dir);
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).sort();
    for (const f of files) {
      const s = statSync(join(root, f), { bigint: true });
      h.update(`${dir}/${f} ${s.size} ${s.mtimeNs} ${s.ctimeNs} ${s.ino}\n`);
    }
  }
  return h.digest('hex');
}

/**
 * What every host of the site is rendered from, apart from mailops itself: the site model, the passwords as
 * the hosts get them (hashed; the smarthost's, which they get in plain text, hashed the same way, so that
 * the memo holds no digest one could try passwords against quickly) and the site state.
 */
export function memoInputs(site: Site, credentials: Credentials, state: SiteState | undefined): string {
  const creds = [...credentials].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, k === RELAY_PASSWORD ? stableHash(v, RELAY_PASSWORD) : v]);
  return JSON.stringify([site, creds, state ?? null]);
}

/** The digest of the inputs every host of the site is rendered from, mailops's own code and data too. */
export function siteDigest(site: Site, credentials: Credentials, state: SiteState | undefined): string {
  return createHash('sha256').update(codeDigest()).update('\0').update(memoInputs(site, credentials, state)).digest('hex');
}

export const memoKey = (site: string, host: Host): string => createHash('sha256').update(`${site}\0${host.name}`).digest('hex');

export interface Memo {
  /** The entry for this host and key, while it is valid. */
  find(host: Host, key: string, now: number): MemoEntry | undefined;
  /** Keep (entry) or drop (null) a host's entry; written by save. */
  put(host: Host, entry: MemoEntry | null): void;
  save(): void;
}

export function openMemo(file: string | null): Memo {
  let entries: Record<string, MemoEntry> = {};
  if (file) {
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as { version?: number; hosts?: Record<string, MemoEntry> };
      if (data.version === 1 && data.hosts && typeof data.hosts === 'object') entries = data.hosts;
    } catch {
      // none yet, or unreadable: a run without it
    }
  }
  const changed = new Map<string, MemoEntry | null>();
  return {
    find(host, key, now) {
      const e = entries[host.name];
      return e && e.key === key && typeof e.until === 'number' && now < e.until && typeof e.script === 'string' && typeof e.answer === 'string' ? e : undefined;
    },
    put(host, entry) {
      if (entry || entries[host.name]) changed.set(host.name, entry);
    },
    save() {
      if (!file || changed.size === 0) return;
      try {
        // Entries other runs wrote meanwhile stay; this run's replace theirs for its hosts.
        let now: Record<string, MemoEntry> = {};
        try {
          const data = JSON.parse(readFileSync(file, 'utf8')) as { version?: number; hosts?: Record<string, MemoEntry> };
          if (data.version === 1 && data.hosts) now = data.hosts;
        } catch {
          // none
        }
        for (const [h, e] of changed) {
          if (e) now[h] = e;
          else delete now[h];
        }
        const dir = join(file, '..');
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const tmp = `${file}.${randomBytes(4).toString('hex')}`;
        writeFileSync(tmp, JSON.stringify({ version: 1, hosts: now }), { mode: 0o600 });
        renameSync(tmp, file);
        changed.clear();
      } catch {
        // not kept: the next run plans these hosts in full
      }
    },
  };
}
