/**
 * The fact script: ONE shell script per host that reports everything plan needs, in marked sections.
 * It detects the OS family first, then reports on the managed objects of that family's desired state.
 */
import type { DesiredHost } from '../model/desired.js';
import type { OsFamily } from '../model/site.js';
import { LOCK_FILE } from './shell.js';
import { FAMILY_FACTS, dkimPublicCommand, tlsFingerprintCommand } from './host-facts.js';

export const SECTION = '@@mailops';

/**
 * The facts of one family, gathered at once: every fact's commands (and every command guard, which may
 * take a while: postconf, openssl) run in the background into a file of their own, and the files are
 * printed in order once all are done. A section printed in parts (one per guard) is joined by the parser.
 */
function familyBlock(d: DesiredHost): string {
  const jobs = FAMILY_FACTS.flatMap((f) => {
    const lines = f.command(d);
    if (f.eachLine && lines.length) return lines.map((l) => [`sec ${f.section}`, l]);
    return [[`sec ${f.section}`, ...lines]];
  });
  return [
    'j=$(mktemp -d) || exit 1',
    ...jobs.map((body, i) => `{\n${body.join('\n')}\n} > "$j/${i}" &`),
    'wait',
    `for i in ${jobs.map((_, i) => i).join(' ')}; do cat "$j/$i"; done`,
    'rm -rf "$j"',
  ].join('\n');
}

export { dkimPublicCommand, tlsFingerprintCommand };

/** The whole script. `byFamily` holds the desired state of each family the host may turn out to be. */
export function factScript(byFamily: Partial<Record<OsFamily, DesiredHost>>): string {
  const blocks = Object.entries(byFamily)
    .map(([fam, d]) => `${fam})\n${familyBlock(d!)}\n;;`)
    .join('\n');
  return `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; LC_ALL=C; export PATH LC_ALL
sec() { printf '\\n${SECTION} %s\\n' "$1"; }
sec os
cat /etc/os-release 2>/dev/null
family=unknown
if [ -r /etc/os-release ]; then
  for id in $(. /etc/os-release; echo "$ID $ID_LIKE"); do
    case "$id" in debian|ubuntu) family=debian; break;; rhel|centos|fedora|rocky|almalinux) family=rhel; break;; esac
  done
fi
sec family
echo "$family"
sec lock
if [ -e ${LOCK_FILE} ] && ! flock -n ${LOCK_FILE} true 2>/dev/null; then echo held; else echo free; fi
sec interrupted
# Runs that started but never wrote a result (killed, OOM, reboot), while no apply is running now.
if [ -d /var/lib/mailops/runs ] && { [ ! -e ${LOCK_FILE} ] || flock -n ${LOCK_FILE} true 2>/dev/null; }; then
  for d in /var/lib/mailops/runs/*/; do [ -f "$d/journal" ] && ! grep -q '^@@mailops result ' "$d/log" 2>/dev/null && printf '%s\t%s\n' "$(basename "$d")" "$(cat "$d/journal")"; done
fi
sec queues
[ -d /var/spool/postfix ] && printf 'postfix\\t%s\\n' "$(find /var/spool/postfix/incoming /var/spool/postfix/active /var/spool/postfix/deferred /var/spool/postfix/hold /var/spool/postfix/maildrop -type f 2>/dev/null | wc -l)"
for d in /var/spool/exim4 /var/spool/exim; do [ -d "$d/input" ] && printf 'exim\\t%s\\n' "$(find "$d/input" -name '*-H' 2>/dev/null | wc -l)"; done
case "$family" in
${blocks}
esac
sec end
`;
}
