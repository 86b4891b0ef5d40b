/**
 * The facts of a host, each as pyinfra's FactBase has them: the shell that gathers it and the parser of
 * what that shell prints, side by side. The fact script (script.ts) runs every command of a host's family
 * in one round trip, each under its section marker; parseFacts (parse.ts) hands each section to its
 * fact's parser. Recorded outputs in test/fixtures/facts keep the parsers honest.
 */
import { createHash } from 'node:crypto';
import type { DesiredHost } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';
import { parseDkim, parseGroups, parsePackages, parsePasswd, parseServices, parseSha256, parseStat, tlsFact } from './parse.js';
import { DKIM_PUBLIC_CACHE, firstCertificate, shq, shqAll, shqGlob, tlsFingerprintCommand, unitOf } from './shell.js';
import { parseLifecycle } from '../plan/dkim.js';

export interface Fact {
  /** The section of the fact script its command prints under. */
  section: string;
  /** Shell lines for the desired state of a host (none when nothing of its kind is managed). */
  command(d: DesiredHost): string[];
  /**
   * `pipe`: its lines run in the background, at once with the rest of the script (the slow programs:
   * systemctl, rpm); else they run in turn, in the script's main part. Per host when a function.
   */
  runs?: 'pipe' | ((d: DesiredHost) => 'pipe' | undefined);
  /**
   * Tests that run programs (command guards), each in the background at once with everything else; when
   * one holds (exit status 0), its `print` line prints under the fact's section.
   */
  tests?(d: DesiredHost): Array<{ test: string; print: string }>;
  /**
   * What it prints is decided by the contents of files alone (and of the managed files the files fact
   * hashes): it is kept in the snapshot (fileSnapshot) under this shell variable, and printed from there
   * while none of those files changed. `reads`: the files it reads besides the managed ones, as shell words
   * (quoted; a glob stays one). Its lines run in a subshell; a status other than 0 keeps the snapshot from
   * being written (what it printed came from elsewhere: NSS).
   */
  cached?: { variable: string; reads(d: DesiredHost): string[] };
  /** Its part of HostFacts, from the lines of its section (`all`: every section, for a fact that joins two). */
  parse(lines: string[], all: ReadonlyMap<string, string[]>): Partial<HostFacts>;
}

export { tlsFingerprintCommand };

/**
 * Prints, with `printf FORMAT domain selector spki`, the public half of a DKIM key file as its DER
 * SubjectPublicKeyInfo in base64 (the activation's report; the fact script prints it in PEM). The algorithm, size and p= value DNS publishes are
 * read from it (dkimFromSpki), never assumed from the playbook: a key made for an older playbook is
 * published as what it is.
 */
export function dkimPublicCommand(keyFile: string, domain: string, selector: string, printf: string): string {
  const k = shq(keyFile);
  return `if [ -f ${k} ]; then p=$(openssl pkey -in ${k} -pubout -outform DER 2>/dev/null | base64 | tr -d '\\n'); [ -z "$p" ] || ${printf} ${shq(domain)} ${shq(selector)} "$p"; fi`;
}

/**
 * Caches the public half of every key file of the DKIM directory for the fact script (DKIM_PUBLIC_CACHE):
 * run at the end of an activation. Entries of keys that are gone or changed are removed; each is written
 * by rename, so the fact script never reads half of one.
 */
export function dkimCacheCommand(keysDir: string, cache: string = DKIM_PUBLIC_CACHE): string {
  const c = shq(cache);
  return [
    `mkdir -p ${c} && chmod 700 ${c} && keep=$(sha256sum -- ${shq(keysDir)}/*.key 2>/dev/null | while read -r s k; do printf ' %s' "$s"; [ -s ${c}/"$s" ] && continue;`,
    `p=$(openssl pkey -in "$k" -pubout -outform DER 2>/dev/null | base64 | tr -d '\n'); [ -n "$p" ] && printf '%s\n' "$p" > ${c}/."$s" && mv -f ${c}/."$s" ${c}/"$s"; done) && keep="$keep ";`,
    `for f in ${c}/*; do [ -f "$f" ] || continue; case "$keep" in *" \${f##*/} "*) ;; *) rm -f "$f";; esac; done`,
  ].join(' ');
}

/** Where the fact script keeps what it may reuse on a host mailops manages (cachedDpkgQuery). Root's alone. */
export const FACTS_CACHE = '/var/lib/mailops/facts';

/**
 * A cache of the fact script's in the shell: `$c` its directory, and the test that makes it when the host
 * is one mailops manages (its parent exists) and holds when the directory is there.
 */
function factsCache(cache: string = FACTS_CACHE): { assign: string; ready: string } {
  return { assign: `c=${shq(cache)}`, ready: `[ -d ${shq(cache.replace(/\/[^/]+$/, ''))} ] && { [ -d "$c" ] || mkdir -p -m 700 "$c" 2>/dev/null; }` };
}

/**
 * dpkg-query's answer for these packages, reused while the package database is the one it was read from:
 * dpkg-query costs a host some 6 ms (a program started, the whole status file parsed), the reuse only shell
 * builtins.
 *
 * - dpkg never writes its status file in place: every change of it is a new file renamed over the old one
 *   (a new inode). Changes not yet written to it wait in /var/lib/dpkg/updates/. So while updates/ is empty
 *   and the status file is the very file the answer was read from, the answer stands. The cache keeps a
 *   hard link to that file and compares with `[ -ef ]` (same device and inode, exact; the link keeps the
 *   old inode's number from being reused).
 * - Each answer is a directory of its own (mktemp: the link, then the answer read after it was made), and
 *   a pointer file names the current one, with the digest of the question (the packages, the format): it is
 *   replaced by rename, and the older directories are removed. A run that reads a directory being removed
 *   fails to open its answer and asks dpkg-query itself; one that reads an answer read before a change
 *   finds the link no longer the status file. Whatever the interleaving, no answer is used for a package
 *   database other than the one it was read from (or a later one).
 * - Only on a host that has /var/lib/mailops (one mailops applied to; the cache's parent): the cache is the only thing a plan
 *   writes, and only there. Where a hard link cannot be made (another file system), dpkg-query is asked each
 *   time.
 */
export function cachedDpkgQuery(packages: readonly string[], o: { admindir?: string; cache?: string } = {}): string[] {
  const admin = o.admindir ?? '/var/lib/dpkg';
  const cache = factsCache(o.cache);
  const query = `dpkg-query${o.admindir ? ` --admindir=${shq(admin)}` : ''} -W -f='\${Package}\\t\${Version}\\t\${db:Status-Abbrev}\\n' ${shqAll(packages)} 2>/dev/null`;
  const key = createHash('sha256').update(query).digest('hex').slice(0, 16);
  const status = shq(`${admin}/status`);
  return [
    `${cache.assign}; k=${key}; h=; u=; n=`,
    `for f in ${shq(`${admin}/updates`)}/*; do [ -e "$f" ] && u=1 && break; done`,
    // The answer is shell assignments (out.sh), read at once by "." ("command" keeps a damaged file from
    // ending the script), with the digest of the question last.
    `po=; pz=`,
    `if [ -z "$u" ] && [ -f "$c"/dpkg ] && { read -r a b < "$c"/dpkg; [ "$a" = "$k" ] && [ -n "$b" ] && [ ${status} -ef "$c/$b/status" ]; } && command . "$c/$b/out.sh" 2>/dev/null && [ "$pz" = "$k" ]; then h=1; printf '%s\\n' "$po"; fi`,
    `if [ -z "$h" ]; then`,
    `  [ -z "$u" ] && ${cache.ready} && n=$(mktemp -d "$c"/dpkg.XXXXXXXX 2>/dev/null) && { ln ${status} "$n"/status 2>/dev/null || { rmdir "$n"; n=; }; }`,
    `  o=$(${query}); printf '%s\\n' "$o"`,
    // Package names, versions and states hold no quote; an answer that would is not kept.
    `  case "$o" in *"'"*) [ -z "$n" ] || rm -rf "$n"; n=;; esac`,
    `  if [ -n "$n" ]; then printf "po='%s'; pz=%s\\n" "$o" $k 2>/dev/null > "$n"/out.sh && printf '%s %s\\n' $k "\${n##*/}" > "$c"/.dpkg.$$ && mv -f "$c"/.dpkg.$$ "$c"/dpkg && for x in "$c"/dpkg.*; do [ "$x" = "$n" ] || rm -rf "$x"; done; fi`,
    `fi`,
  ];
}

/** systemd's unit search path for the system (`systemd-analyze unit-paths`), in its order. */
export const UNIT_PATHS = [
  '/etc/systemd/system.control',
  '/run/systemd/system.control',
  '/run/systemd/transient',
  '/run/systemd/generator.early',
  '/etc/systemd/system',
  '/etc/systemd/system.attached',
  '/run/systemd/system',
  '/run/systemd/system.attached',
  '/run/systemd/generator',
  '/usr/local/lib/systemd/system',
  '/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/run/systemd/generator.late',
];

/**
 * `systemctl list-unit-files` for these units, reused while nothing it is read from has changed since: the
 * question costs a host some 10 ms (systemctl started, systemd reading every directory of its search path),
 * the reuse only shell builtins. As systemd itself tells a unit file changed on disk, by modification times:
 *
 * - A unit file's state (enabled, disabled, static, masked, alias, linked...) is read from the directories
 *   of the unit search path (UNIT_PATHS: which unit files there are, and the symlinks that alias, mask or
 *   link them), their .wants, .requires and .upholds directories (the symlinks that enable), and the unit
 *   files' [Install] sections. Any entry made, removed or replaced in a directory changes its modification
 *   time; an edit of a unit file changes the file's.
 * - The answer is kept in one file, written by rename, whose modification time is set to two seconds
 *   before the question was asked (`date`, then `touch -d`): whatever changed while or after systemd
 *   answered is at least as new as it, whatever the file system's timestamp granularity, and a clock set
 *   back by up to two seconds since. The answer is used only while it is strictly newer than every one of
 *   those directories and unit files (the nearest existing parent stands for a directory that is missing:
 *   making it changes that one; the transient units' directory, which every login changes, is looked at
 *   for these units only), and not newer than this very run's start (/proc/$$: a clock set back
 *   further). It holds the digest of the question and the boot it was asked in
 *   (/proc/sys/kernel/random/boot_id): a reboot, with its generators and runtime units, asks anew.
 * - What it cannot see, as no tool that trusts modification times can: a unit file edited with its old
 *   modification time put back, or changes while the clock stood more than two seconds behind the answer's.
 * - A failed question (systemctl's exit status), or one no unit file matched, is not kept. Only on a host
 *   that has /var/lib/mailops (one mailops applied to), as cachedDpkgQuery.
 *
 * Leaves $h set when the answer was the kept one, $U the answer and $boot the boot (cachedUnitStates).
 */
export function cachedUnitFiles(units: readonly string[], o: { cache?: string; paths?: readonly string[]; transient?: string; bootId?: string } = {}): string[] {
  const cache = factsCache(o.cache);
  const query = `systemctl list-unit-files --full --plain --no-legend -- ${shqAll(units)}`;
  const key = createHash('sha256').update(query).digest('hex').slice(0, 16);
  // /lib/systemd/system is /usr/lib/systemd/system on a merged /usr: looked at once.
  const all = o.paths ?? UNIT_PATHS;
  const transient = o.transient ?? '/run/systemd/transient';
  const shell = (ps: readonly string[]) => ps.map((p) => (p === '/lib/systemd/system' ? '$lib' : shq(p))).join(' ');
  const paths = shell(all);
  // The transient units' directory changes at every login (its session's scope): only a transient unit of
  // one of these names would change their answer, and while there is one, systemd is asked each time.
  const watched = shell(all.filter((p) => p !== transient));
  return [
    `${cache.assign}; k=${key}; h=; boot=; lib=/lib/systemd/system; [ "$lib" -ef /usr/lib/systemd/system ] && lib=`,
    `read -r boot < ${shq(o.bootId ?? '/proc/sys/kernel/random/boot_id')} 2>/dev/null`,
    // Whether the answer (its file's modification time) is strictly newer than every directory of the
    // search path (else its nearest existing parent), their .wants, .requires and .upholds directories (the
    // names ending in s), and the unit files found when it was asked ($1...: each still there).
    `units_fresh() {`,
    `  for p in "$@"; do [ "$c"/units -nt "$p" ] || return 1; done`,
    `  for u in ${shqAll(units)}; do ! [ -e ${shq(transient)}/"$u" ] || return 1; done`,
    `  for d in ${watched}; do`,
    `    if [ -e "$d" ]; then for p in "$d" "$d"/*s; do [ "$c"/units -nt "$p" ] || ! [ -e "$p" ] || return 1; done`,
    `    else while [ -n "$d" ] && ! [ -e "$d" ]; do d=\${d%/*}; done; [ "$c"/units -nt "\${d:-/}" ] || return 1; fi`,
    `  done`,
    `}`,
    // The answer is a file of shell assignments, read by the shell at once (`.`; `command` keeps a damaged
    // one from ending the script): the key first and last, the boot, the unit files found, the answer.
    `ua=; ub=; uf=; uo=; uz=`,
    `U=; if [ -n "$boot" ] && [ -f "$c"/units ] && ! [ "$c"/units -nt /proc/$$ ] && command . "$c"/units 2>/dev/null && [ "$ua" = "$k" ] && [ "$uz" = "$k" ] && [ "$ub" = "$boot" ] && units_fresh $uf; then h=1; U=$uo; printf '%s\\n' "$uo"; fi`,
    `if [ -z "$h" ]; then`,
    `  t=; [ -n "$boot" ] && ${cache.ready} && t=$(date +%s 2>/dev/null)`,
    `  o=$(${query} 2>/dev/null); s=$?`,
    `  U=$o; [ -n "$o" ] && printf '%s\\n' "$o"`,
    `  if [ -n "$t" ] && [ "$s" = 0 ] && [ -n "$o" ]; then`,
    `    f=; for d in ${paths}; do for u in ${shqAll(units)}; do [ -e "$d/$u" ] && f="$f $d/$u"; done; done`,
    // Unit names, states and paths hold no quote; a host where one would is not cached.
    `    case "$o$f$boot" in *"'"*) ;; *) { printf "ua=%s; ub='%s'; uf='%s'; uo='%s'; uz=%s\\n" $k "$boot" "$f" "$o" $k > "$c"/.units.$$ && touch -d "@$((t - 2))" "$c"/.units.$$ && mv -f "$c"/.units.$$ "$c"/units; } 2>/dev/null || rm -f "$c"/.units.$$;; esac`,
    `  fi`,
    `fi`,
  ];
}

/**
 * The units' states (`systemctl list-units` for these units, `systemctl show` for template instances),
 * reused while no service started or stopped since: the question costs a host some 7 ms (systemctl
 * started, PID 1 asked), the reuse only shell builtins. Runs after cachedUnitFiles, whose answer it needs.
 *
 * - systemd links each started unit's invocation ID into /run/systemd/units (`invocation:<unit>`), and
 *   removes the link as the unit becomes inactive or failed (unit_notify: "make sure the cgroup and state
 *   files are always removed when we become inactive"). So every start, stop, restart or failure of a
 *   service, by systemctl or by systemd itself (Restart=, a crash), makes or removes an entry of that
 *   directory and changes its modification time.
 * - The answer is kept as the unit files' is (cachedUnitFiles: two seconds older than the question, the
 *   boot, the digest of the question, not newer than this run), and used only while it is strictly newer
 *   than /run/systemd/units, while the unit files' answer is the kept one (no unit file, link or
 *   search-path directory changed since that was asked), and is the one it was kept with.
 * - It is kept only when it can be told this way: every unit it lists is a service, active or inactive
 *   (not failed: `systemctl reset-failed` removes no link; not between two states); and every other unit
 *   asked (a timer: systemd links no invocation of it) has no unit file, so that none can start until one
 *   is made, which the unit files' answer sees (or a transient one, which cachedUnitFiles looks for).
 * - What it cannot see: a systemd that does not keep /run/systemd/units (none is kept then), and changes
 *   while the clock stood more than two seconds behind the answer's.
 */
export function cachedUnitStates(named: readonly string[], instances: readonly string[], o: { cache?: string; units?: string } = {}): string[] {
  const cache = factsCache(o.cache);
  const dir = shq(o.units ?? '/run/systemd/units');
  const asks = [...(named.length ? [`systemctl list-units --all --full --plain --no-legend -- ${shqAll(named)}`] : []), ...(instances.length ? [`systemctl show -p Id -p UnitFileState -p ActiveState -- ${shqAll(instances)}`] : [])];
  const query = asks.map((a) => `${a} 2>/dev/null`).join(' && ');
  const key = createHash('sha256').update(query).digest('hex').slice(0, 16);
  const others = named.filter((u) => !u.endsWith('.service'));
  return [
    `${cache.assign}; vk=${key}; va=; vb=; vu=; vo=; vz=`,
    `if [ -n "$h" ] && [ -n "$boot" ] && [ -f "$c"/states ] && [ "$c"/states -nt ${dir} ] && ! [ "$c"/states -nt /proc/$$ ] && command . "$c"/states 2>/dev/null && [ "$va" = "$vk" ] && [ "$vz" = "$vk" ] && [ "$vb" = "$boot" ] && [ "$vu" = "$U" ]; then [ -z "$vo" ] || printf '%s\\n' "$vo"`,
    `else`,
    `  t=; [ -n "$boot" ] && [ -d ${dir} ] && ${cache.ready} && t=$(date +%s 2>/dev/null)`,
    `  o=$(${query}); s=$?`,
    `  [ -n "$o" ] && printf '%s\\n' "$o"`,
    // Kept only when every state it holds is one a change of which /run/systemd/units shows.
    `  if [ -n "$t" ] && [ "$s" = 0 ]; then`,
    `    v=1; set -f; IFS='\n'; for l in $o; do IFS=' '; set -- $l; case "$1" in Id=*.service|UnitFileState=*|ActiveState=active|ActiveState=inactive) ;; *=*) v=;; *.service) case "$3" in active|inactive) ;; *) v=;; esac;; *) v=;; esac; done; set +f; unset IFS`,
    ...(others.length ? [`    for u in ${shqAll(others)}; do case "\n$U" in *"\n$u "*) v=;; esac; done`] : []),
    `    if [ -n "$v" ]; then case "$o$boot$U" in *"'"*) ;; *) { printf "va=%s; vb='%s'; vu='%s'; vo='%s'; vz=%s\\n" $vk "$boot" "$U" "$o" $vk > "$c"/.states.$$ && touch -d "@$((t - 2))" "$c"/.states.$$ && mv -f "$c"/.states.$$ "$c"/states; } 2>/dev/null || rm -f "$c"/.states.$$;; esac; fi`,
    `  fi`,
    `fi`,
  ];
}

/**
 * stat's line of a path: name, mode, owner and group (the filestat section), then the file's type, inode,
 * size, and modification and change times (to the nanosecond, then the change time in seconds, last), which
 * the snapshot compares.
 */
const STAT = `stat -c '%n\t%a\t%U\t%G\t%F %i %s %y %z %Z' --`;

/** The snapshot's file in the facts cache, and the shell variables it sets. */
const SNAPSHOT = 'snapshot';

/**
 * The snapshot of the files the fact script reads, as git's index keeps a file's hash while its stat data
 * is the same: one `stat` of the managed files (which the files fact hashes), the DKIM keys, the files the
 * cached facts read (/etc/passwd, /etc/group, the certificate: Fact.cached) and the managed directories.
 * Its lines of regular files (inode, size, modification and change times: $sn_p) are the snapshot's key;
 * while they are the ones of the last snapshot, what the cached facts printed then (their variables, and
 * $xh: the hashes) is printed again, and sha256sum and the shell's reading of those files, byte by byte, are
 * spared (some 5 ms of a host's CPU).
 *
 * - A file's change time (ctime) is set by the kernel at every write, rename, chmod or chown, and no
 *   program can set it back; with the inode, size and modification time, a file with other contents has
 *   other stat data. A snapshot is written only when every one of its files changed more than five seconds
 *   before it was taken (`date`, after the programs that read them): a later change has a later change
 *   time, whatever the file system's timestamp granularity.
 * - A path that is neither a directory nor a regular file (a symlink: stat reports the link, sha256sum
 *   reads its target) keeps the snapshot from being written; so does a cached fact that says so.
 * - The snapshot is one file of shell assignments, read at once by `.` (`command`: a damaged one does not
 *   end the script), written by rename, with the digest of the question (the paths, every cached fact's
 *   command) first and last. Only on a host that has /var/lib/mailops, as cachedDpkgQuery.
 * - What it cannot see: a file changed while the clock stood more than five seconds behind the snapshot's,
 *   with the very same size, inode and times as before.
 */
export function fileSnapshot(paths: string[], key: string, o: { cache?: string } = {}): string[] {
  const cache = factsCache(o.cache);
  return [
    `${cache.assign}; sn_k=${key}; sn_hit=; sn_nc=; sn_bad=; sn_p=`,
    `sn_s=$(${STAT} ${paths.join(' ')} 2>/dev/null)`,
    `set -f; IFS='\n'; for l in $sn_s; do case "$l" in *'\tdirectory '*) ;; *'\tregular '*) sn_p="$sn_p$l\n";; *) sn_bad=1;; esac; done; set +f; unset IFS`,
    `xk=; xs=; xz=`,
    `[ -n "$sn_p" ] && [ -f "$c"/${SNAPSHOT} ] && command . "$c"/${SNAPSHOT} 2>/dev/null && [ "$xk" = "$sn_k" ] && [ "$xz" = "$sn_k" ] && [ "$xs" = "$sn_p" ] && sn_hit=1`,
  ];
}

/**
 * Writes the snapshot (fileSnapshot) of this run, with the cached facts' variables: when it was not
 * taken from the last one, every file it holds changed more than five seconds ago, and nothing kept it from
 * being written. Names, hashes and entries hold no quote; a snapshot that would is not written.
 */
export function snapshotWrite(variables: string[], o: { cache?: string } = {}): string[] {
  const cache = factsCache(o.cache);
  const values = variables.map((v) => `"$${v}"`).join(' ');
  const format = variables.map((v) => `${v}='%s'; `).join('');
  return [
    cache.assign,
    `if [ -z "$sn_hit" ] && [ -z "$sn_nc" ] && [ -z "$sn_bad" ] && [ -n "$sn_p" ] && ${cache.ready} && t=$(date +%s 2>/dev/null) && [ -n "$t" ]; then`,
    `  sn_new=; set -f; IFS='\n'; for l in $sn_p; do z=\${l##* }; [ "$z" -lt $((t - 5)) ] 2>/dev/null || sn_new=1; done; set +f; unset IFS`,
    `  [ -n "$sn_new" ] || case "$sn_p"${values.replace(/ /g, '')} in *"'"*) ;; *) { printf "xk=%s; xs='%s'; ${format}xz=%s\\n" "$sn_k" "$sn_p" ${values} "$sn_k" > "$c"/.${SNAPSHOT}.$$ && mv -f "$c"/.${SNAPSHOT}.$$ "$c"/${SNAPSHOT}; } 2>/dev/null || rm -f "$c"/.${SNAPSHOT}.$$;; esac`,
    `fi`,
  ];
}

/**
 * Prints the entries of these names in the passwd or group database, as `getent` does: read from the
 * local file by the shell itself (no program to start), and asked of getent (NSS: LDAP, sss...) only for a
 * name the file does not have. The local file comes first in every stock nsswitch.conf.
 */
export function localEntries(db: 'passwd' | 'group', names: string[]): string {
  // Its status: 0 when every entry came from the file (the snapshot keeps only those: Fact.cached).
  return `m=; for n in ${shqAll(names)}; do f=; while IFS= read -r l; do case "$l" in "$n":*) printf '%s\n' "$l"; f=1; break;; esac; done < /etc/${db}; [ -n "$f" ] || { m=1; getent ${db} "$n"; }; done; [ -z "$m" ]`;
}
const nonEmpty = (lines: string[]) => lines.filter((l) => l.trim() !== '');

/** The facts that depend on what the playbook manages on a host of one family, in script order. */
export const FAMILY_FACTS: Fact[] = [
  {
    section: 'packages',
    // rpm is asked every time (some 20 ms); dpkg's answer is mostly read from its cache, in turn.
    runs: (d) => (d.os.packageManager === 'apt' ? undefined : 'pipe'),
    command: (d) => (d.packages.length === 0 ? [] : d.os.packageManager === 'apt' ? cachedDpkgQuery(d.packages) : [`rpm -q --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\tii \\n' ${shqAll(d.packages)} 2>/dev/null | grep '	'`]),
    parse: (lines) => ({ packages: parsePackages(lines) }),
  },
  {
    // Content hashes here, owner and mode under "filestat" (the directories' too: one stat for all): a
    // file is known when it has both; plan looks up only the directories it manages.
    section: 'files',
    command: (d) => {
      const files = [...d.files.map((f) => f.path), ...d.retired.files.map((f) => f.path)];
      const all = [...files, ...d.directories.map((x) => x.path)];
      // And the files whose group a command's guard is planned from (groupGuardHolds), globs as they are.
      const owned = [...new Set(d.commands.flatMap((c) => c.groupGuard?.paths ?? []))].map(shqGlob);
      // The DKIM keys are hashed by the same program (one less to start); their lines are the dkim fact's
      // (in $H), and this one keeps only the paths stat reports.
      const keys = files.length ? [`${shq(d.os.paths.dkimKeys)}/*.key`] : [];
      const hash = `sha256sum -- ${[shqAll(files), ...keys].join(' ')} 2>/dev/null`;
      // One stat for the filestat section and the snapshot (fileSnapshot): of the files the cached facts
      // read too. The directories last.
      const hashedWords = new Set([...files.map(shq), ...keys]);
      const cachedFacts = FAMILY_FACTS.filter((f) => f.cached).map((f) => ({ cached: f.cached!, lines: f.command(d) }));
      const reads = [...new Set(cachedFacts.flatMap((f) => (f.lines.length ? f.cached.reads(d) : [])))].filter((w) => !hashedWords.has(w));
      const paths = [shqAll(files), ...keys, ...reads, shqAll(d.directories.map((x) => x.path)), ...owned].filter(Boolean);
      if (!paths.length) return ['sec filestat'];
      const question = [hash, ...paths, ...cachedFacts.flatMap((f) => [f.cached.variable, ...f.lines])];
      const key = createHash('sha256').update(question.join('\n')).digest('hex').slice(0, 16);
      return [
        ...fileSnapshot(paths, key),
        ...(files.length ? [`if [ -n "$sn_hit" ]; then H=$xh; else H=$(${hash}); fi; xh=$H; printf '%s\\n' "$H"`] : []),
        'sec filestat',
        `[ -z "$sn_s" ] || printf '%s\\n' "$sn_s"`,
      ];
    },
    parse: (lines, all) => {
      const stats = parseStat(all.get('filestat') ?? []);
      const files: HostFacts['files'] = {};
      for (const [path, sha256] of Object.entries(parseSha256(lines))) {
        const st = stats[path];
        if (st) files[path] = { sha256, ...st };
      }
      return { files, directories: stats };
    },
  },
  {
    section: 'services',
    runs: 'pipe',
    // Two light questions to systemd rather than `systemctl show`, which fetches every property of every
    // unit named (some 1.5 ms of PID 1's and systemctl's time a unit): the loaded units' states
    // (list-units: a unit it does not list is not loaded, so inactive), then the unit files' (list-unit-files:
    // one it does not list has none, "not-found", as show says). A template's instance has no unit file of
    // its own: those are asked with show.
    command: (d) => {
      const units = [...new Set([...d.services.map((s) => s.unit), ...d.replaces.map((x) => x.unit), ...d.retired.units.map((x) => x.unit)].map(unitOf))];
      const named = units.filter((u) => !u.includes('@'));
      const instances = units.filter((u) => u.includes('@'));
      if (!units.length) return [];
      // The unit files first: the states are reused only while their answer is (cachedUnitStates).
      return ['sec unitfiles', ...(named.length ? cachedUnitFiles(named) : []), 'sec services', ...cachedUnitStates(named, instances)];
    },
    parse: (lines, all) => ({ services: parseServices(lines, all.get('unitfiles') ?? []) }),
  },
  {
    // The Dovecot apt would install, on a host that has none yet: its configuration's syntax depends on the
    // generation (src/os/index.ts, dovecotOf). Nothing to ask once it is installed (the packages fact has it),
    // nor on a host without apt lists (the release decides then).
    section: 'dovecot',
    command: (d) =>
      d.os.packageManager === 'apt' && d.packages.includes('dovecot-core')
        ? [`[ -e /usr/sbin/dovecot ] || apt-cache policy dovecot-core 2>/dev/null | while read -r k v; do [ "$k" = Candidate: ] && printf '%s\\n' "$v"; done`]
        : [],
    parse: (lines) => {
      const v = nonEmpty(lines)[0]?.trim();
      return v && v !== '(none)' ? { dovecotCandidate: v } : {};
    },
  },
  {
    section: 'users',
    cached: { variable: 'xu', reads: () => ['/etc/passwd'] },
    command: (d) => (d.users.length ? [localEntries('passwd', d.users.map((u) => u.name))] : []),
    parse: (lines) => ({ users: parsePasswd(lines) }),
  },
  {
    section: 'groups',
    cached: { variable: 'xg', reads: () => ['/etc/group'] },
    command: (d) => (d.users.length ? [localEntries('group', [...new Set(d.users.map((u) => u.group))])] : []),
    parse: (lines) => ({ groups: parseGroups(lines) }),
  },
  {
    section: 'dkim',
    // From the keys (their hashes) and the lifecycle file: the public halves are the keys' own, whether read
    // from the cache or from openssl.
    cached: { variable: 'xd', reads: (d) => [`${shq(d.os.paths.dkimKeys)}/*.key`, shq(`${d.os.paths.dkimKeys}/lifecycle`)] },
    // Every key file of the directory (<domain>.<selector>.key), whatever the playbook asks for now: keys
    // being replaced or retired are the host's too. Then the lifecycle file, line by line.
    command: (d) => {
      const dir = shq(d.os.paths.dkimKeys);
      const cache = shq(DKIM_PUBLIC_CACHE);
      return [
        // Each key's name, then its public half: as the last activation cached it for this very key (by the
        // file's SHA-256), else in PEM from openssl (3-4 ms a key). mailops reads either. The hashes are the
        // files fact's sha256sum's ($H, lines "HASH  PATH"), else this one's.
        `[ -n "\${H+x}" ] || H=$(sha256sum -- ${dir}/*.key 2>/dev/null)`,
        `set -f; IFS='\n'; for l in $H; do unset IFS; s=\${l%% *}; k=\${l#"$s"}; k=\${k#?}; k=\${k#?}; case "$k" in ${dir}/*.key) ;; *) continue;; esac; [ -f "$k" ] || continue; n=\${k##*/}; n=\${n%.key}; printf 'key\\t%s\\t%s\\n' "\${n%.*}" "\${n##*.}"; p=; [ -f ${cache}/"$s" ] && read -r p < ${cache}/"$s"; if [ -n "$p" ]; then printf 'spki\\t%s\\n' "$p"; else openssl pkey -in "$k" -pubout 2>/dev/null; fi; done; set +f; unset IFS`,
        `[ -f ${dir}/lifecycle ] && while IFS= read -r l; do printf 'lifecycle\\t%s\\n' "$l"; done < ${dir}/lifecycle`,
        ':',
      ];
    },
    parse: (lines) => {
      const lifecycle = lines.filter((l) => l.startsWith('lifecycle\t'));
      return { dkim: parseDkim(lines.filter((l) => !l.startsWith('lifecycle\t'))), ...(lifecycle.length ? { dkimLifecycle: parseLifecycle(lifecycle.map((l) => l.slice(10))) } : {}) };
    },
  },
  {
    section: 'tls',
    // The first certificate of the file in PEM; mailops hashes it (tlsFact).
    cached: { variable: 'xt', reads: (d) => (d.tlsCert ? [shq(d.tlsCert)] : []) },
    command: (d) => (d.tlsCert ? [firstCertificate(d.tlsCert), ':'] : []),
    parse: (lines) => tlsFact(lines),
  },
  {
    // The indexes of the commands whose creates/unless guard says they are done.
    // `creates` guards are shell builtins: one line for all of them; every `unless` guard is a test of its own.
    // A certificate command's guard is planned from the tls fact instead (certGuardHolds), a group's from the
    // files fact's stat (groupGuardHolds).
    section: 'commands',
    command: (d) => {
      const creates = d.commands.flatMap((c, i) => (c.creates !== undefined ? [`{ [ -e ${shq(c.creates)} ] && echo ${i}; }`] : []));
      return creates.length ? [creates.join('; ')] : [];
    },
    tests: (d) => d.commands.flatMap((c, i) => (c.creates === undefined && c.unless !== undefined && !c.certGuard && !c.groupGuard ? [{ test: c.unless, print: `echo ${i}` }] : [])),
    parse: (lines) => ({ commandsDone: nonEmpty(lines).map(Number).filter((n) => Number.isInteger(n)) }),
  },
];
