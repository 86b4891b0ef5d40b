/**
 * The fact script: ONE shell script per host that reports everything plan needs, in marked sections.
 * It detects the OS family first, then reports on the managed objects of that family's desired state.
 */
import type { DesiredHost } from '../model/desired.js';
import type { OsFamily } from '../model/site.js';
import { LOCK_FILE } from './shell.js';
import { FAMILY_FACTS, dkimCacheCommand, dkimPublicCommand, tlsFingerprintCommand } from './host-facts.js';

export const SECTION = '@@mailops';

/** Postfix's queues that hold mail (incoming, active, deferred, hold, maildrop). */
const POSTFIX_QUEUES = ['incoming', 'active', 'deferred', 'hold', 'maildrop'];

/**
 * The facts of one family, as background jobs: the heavy facts' commands (and every command guard, which
 * may take a while: postconf, openssl) each into a file of their own, the light facts together into one
 * more. Each file starts with its section marker; a section printed in parts (one per guard) is joined by
 * the parser, so the order the files are printed in does not matter.
 */
function familyJobs(d: DesiredHost): string {
  const jobs: string[][] = [];
  const light: string[] = [];
  for (const f of FAMILY_FACTS) {
    const lines = f.command(d);
    if (!lines.length) continue; // nothing of its kind managed: nothing to run, its section stays empty
    if (f.jobs === 'each') jobs.push(...lines.map((l) => [`sec ${f.section}`, l]));
    else if (f.jobs === 'light') light.push(`sec ${f.section}`, ...lines);
    else jobs.push([`sec ${f.section}`, ...lines]);
  }
  if (light.length) jobs.push(light);
  return jobs.map((body, i) => `{\n${body.join('\n')}\n} > "$j/${i}" &`).join('\n');
}

export { dkimCacheCommand, dkimPublicCommand, tlsFingerprintCommand };

/**
 * The whole script. `byFamily` holds the desired state of each family the host may turn out to be.
 * Everything but the OS detection (shell builtins only) runs at once, in background jobs whose output
 * one `cat` prints: on a host with idle cores the round trip takes about as long as its slowest program
 * (`systemctl show`).
 */
export function factScript(byFamily: Partial<Record<OsFamily, DesiredHost>>): string {
  const blocks = Object.entries(byFamily)
    .map(([fam, d]) => `${fam})\n${familyJobs(d!)}\n;;`)
    .join('\n');
  return `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; LC_ALL=C; export PATH LC_ALL
sec() { printf '\\n${SECTION} %s\\n' "$1"; }
ID=; ID_LIKE=; NAME=; PRETTY_NAME=; VERSION_ID=
[ -r /etc/os-release ] && . /etc/os-release
sec os
printf 'NAME="%s"\\nPRETTY_NAME="%s"\\nVERSION_ID="%s"\\n' "$NAME" "$PRETTY_NAME" "$VERSION_ID"
family=unknown
for id in $ID $ID_LIKE; do
  case "$id" in debian|ubuntu) family=debian; break;; rhel|centos|fedora|rocky|almalinux) family=rhel; break;; esac
done
sec family
echo "$family"
j=$(mktemp -d) || exit 1
{
sec lock
held=
if [ -e ${LOCK_FILE} ] && ! flock -n ${LOCK_FILE} true 2>/dev/null; then held=1; echo held; else echo free; fi
sec interrupted
# Runs that started but never finished (killed, OOM, reboot), while no apply is running now: a run's
# journal holds its phase, and its result once it finished (src/apply/script.ts).
if [ -d /var/lib/mailops/runs ] && [ -z "$held" ]; then
  for d in /var/lib/mailops/runs/*/; do
    [ -f "$d/journal" ] || continue
    read -r p < "$d/journal" || p=
    case "$p" in ok|failed|rolled-back|rollback-failed|interrupted) ;; *) r=\${d%/}; printf '%s\t%s\n' "\${r##*/}" "$p";; esac
  done
fi
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
done
} > "$j/host" &
case "$family" in
${blocks}
esac
wait
cat "$j"/*
rm -rf "$j"
sec end
`;
}
