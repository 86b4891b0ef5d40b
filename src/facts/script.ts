/**
 * The fact script: ONE shell script per host that reports everything plan needs, in marked sections.
 * It detects the OS family first, then reports on the managed objects of that family's desired state.
 */
import type { DesiredHost } from '../model/desired.js';
import type { OsFamily } from '../model/site.js';
import { LOCK_FILE } from './shell.js';
import { FAMILY_FACTS, dkimCacheCommand, dkimPublicCommand, snapshotWrite, tlsFingerprintCommand } from './host-facts.js';

export const SECTION = '@@mailops';

/** Postfix's queues that hold mail (incoming, active, deferred, hold, maildrop). */
const POSTFIX_QUEUES = ['incoming', 'active', 'deferred', 'hold', 'maildrop'];


/**
 * The facts of one family. Few programs start, since each costs the host a millisecond or more (a fork and
 * an exec, in a container more): what the shell can read itself it reads. The slow programs (`runs: pipe`:
 * systemctl, rpm) run in one background job, at once with everything else; the command guards that
 * run programs start in the background, and their exit statuses are read with `wait`; the rest runs in
 * turn. No temporary files.
 */
function familyPart(d: DesiredHost): string {
  const pipes: string[] = [];
  const tests: string[] = [];
  const main: string[] = [HOST_PART];
  const waits: string[] = [];
  for (const f of FAMILY_FACTS) {
    const lines = f.command(d);
    if (lines.length) {
      const v = f.cached?.variable;
      // A cached fact prints what the snapshot kept while it holds (fileSnapshot), else what its lines print.
      const body = [`sec ${f.section}`, ...(v ? [`if [ -z "$sn_hit" ]; then ${v}=$(`, ...lines, `) || sn_nc=1; fi`, `[ -z "$${v}" ] || printf '%s\\n' "$${v}"`] : lines)];
      if ((typeof f.runs === 'function' ? f.runs(d) : f.runs) === 'pipe') pipes.push(`{\n${body.join('\n')}\n}`);
      else main.push(...body);
    }
    const t = f.tests?.(d) ?? [];
    if (t.length) waits.push(`sec ${f.section}`);
    for (const x of t) {
      const n = tests.length;
      tests.push(`( ${x.test} ) >/dev/null 2>&1 </dev/null & t${n}=$!`);
      waits.push(`wait "$t${n}" && ${x.print}`);
    }
  }
  // The snapshot of this run, when it was taken anew: after the last fact that reads it.
  const cached = FAMILY_FACTS.flatMap((f) => (f.cached ? [f.cached.variable] : []));
  if (cached.length) main.push(...snapshotWrite(['xh', ...cached]));
  const body = `{\n${[...tests, ...main, ...waits].join('\n')}\n} </dev/null`;
  if (!pipes.length) return body;
  // The slow programs' parts run in one job in the background, which writes to the script's output as it
  // goes; the main part's output is gathered meanwhile and written once that job is done: the two never
  // interleave, and nothing is copied line by line.
  return `{\n${pipes.join('\n')}\n} </dev/null &\nmp=$(\n${body}\n)\nwait $!\nprintf '%s\\n' "$mp"`;
}

/** What every host reports, whatever its family: the apply lock, interrupted runs, the mail queues. */
const HOST_PART = `# Runs that started and have no result yet (their journal holds their phase, and their result once they
# finished: src/apply/script.ts). A run writes its journal once it holds the apply lock, so only while there
# is one is the lock asked about (flock, a program): one that holds it is running now; the others were
# killed on the way (OOM, reboot) and are reported as interrupted.
open=
if [ -d /var/lib/mailops/runs ]; then
  for d in /var/lib/mailops/runs/*/; do
    [ -f "$d/journal" ] || continue
    read -r p < "$d/journal" || p=
    case "$p" in ok|failed|rolled-back|rollback-failed|interrupted) ;; *) r=\${d%/}; open="$open\${r##*/}\t$p
";; esac
  done
fi
sec lock
# The lock is tried on the shell's own descriptor (flock starts no program under it); it is let go as the
# group ends and the descriptor closes.
if [ -n "$open" ] && [ -e ${LOCK_FILE} ] && ! { flock -n 9; } 2>/dev/null 9<${LOCK_FILE}; then echo held; else echo free; sec interrupted; printf '%s' "$open"; fi
sec queues
# Counted by globs (shell builtins): a queue is flat, or hashed up to two levels deep (deferred/A/B/ID;
# Exim: input/X/ID-H with split_spool_directory).
if [ -d /var/spool/postfix ]; then
  n=0; for f in ${POSTFIX_QUEUES.map((q) => `/var/spool/postfix/${q}/* /var/spool/postfix/${q}/*/* /var/spool/postfix/${q}/*/*/*`).join(' ')}; do [ -f "$f" ] && n=$((n+1)); done
  printf 'postfix\\t%s\\n' "$n"
fi
for d in /var/spool/exim4 /var/spool/exim; do
  [ -d "$d/input" ] || continue
  n=0; for f in "$d"/input/*-H "$d"/input/*/*-H; do [ -f "$f" ] && n=$((n+1)); done
  printf 'exim\\t%s\\n' "$n"
done`;

export { dkimCacheCommand, dkimPublicCommand, tlsFingerprintCommand };

/**
 * The whole script. `byFamily` holds the desired state of each family the host may turn out to be. The OS
 * detection (shell builtins only) comes first; then the part of the family found (familyPart), or only
 * what every host reports when it is none of them.
 *
 * Its output is gathered by the shell and written once, at the end: line by line (every printf a write),
 * sshd would send it in some two hundred packets, each one for mailops to decrypt and hand on (3 ms a
 * host, more than all else it does with the answer). A script cut short writes nothing, as its missing end
 * marker says anyway.
 */
export function factScript(byFamily: Partial<Record<OsFamily, DesiredHost>>): string {
  const blocks = Object.entries(byFamily)
    .map(([fam, d]) => `${fam})\n${familyPart(d!)}\n;;`)
    .join('\n');
  return `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; LC_ALL=C; export PATH LC_ALL
facts=$(
sec() { printf '\\n${SECTION} %s\\n' "$1"; }
ID=; ID_LIKE=; NAME=; PRETTY_NAME=; VERSION_ID=
[ -r /etc/os-release ] && . /etc/os-release
sec os
printf 'ID="%s"\\nNAME="%s"\\nPRETTY_NAME="%s"\\nVERSION_ID="%s"\\n' "$ID" "$NAME" "$PRETTY_NAME" "$VERSION_ID"
family=unknown
for id in $ID $ID_LIKE; do
  case "$id" in debian|ubuntu) family=debian; break;; rhel|centos|fedora|rocky|almalinux) family=rhel; break;; esac
done
sec family
echo "$family"
case "$family" in
${blocks}
*)
${HOST_PART}
;;
esac
sec end
)
printf '%s\\n' "$facts"
`;
}
