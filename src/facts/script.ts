/**
 * The fact script: ONE shell script per host that reports everything plan needs, in marked sections.
 * It detects the OS family first, then reports on the managed objects of that family's desired state.
 */
import type { DesiredHost } from '../model/desired.js';
import type { OsFamily } from '../model/site.js';
import { LOCK_FILE, shq, shqAll } from './shell.js';

export const SECTION = '@@mailops';

function familyBlock(d: DesiredHost): string {
  const files = d.files.map((f) => f.path);
  const dirs = d.directories.map((x) => x.path);
  const units = [...d.services.map((s) => s.unit), ...d.replaces.map((x) => x.unit)].map((u) => (u.includes('.') ? u : `${u}.service`));
  const users = d.users.map((u) => u.name);
  const groups = [...new Set(d.users.map((u) => u.group))];
  const lines: string[] = [];
  lines.push('sec packages');
  if (d.packages.length) {
    lines.push(
      d.os.packageManager === 'apt'
        ? `dpkg-query -W -f='\${Package}\\t\${Version}\\t\${db:Status-Abbrev}\\n' ${shqAll(d.packages)} 2>/dev/null`
        : `rpm -q --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\tii \\n' ${shqAll(d.packages)} 2>/dev/null | grep '	'`,
    );
  }
  lines.push('sec files');
  if (files.length) lines.push(`sha256sum -- ${shqAll(files)} 2>/dev/null`);
  lines.push('sec filestat');
  if (files.length) lines.push(`stat -c '%n\t%a\t%U\t%G' -- ${shqAll(files)} 2>/dev/null`);
  lines.push('sec dirs');
  if (dirs.length) lines.push(`stat -c '%n\t%a\t%U\t%G' -- ${shqAll(dirs)} 2>/dev/null`);
  lines.push('sec services');
  if (units.length) lines.push(`systemctl show -p Id -p UnitFileState -p ActiveState -- ${shqAll(units)} 2>/dev/null`);
  lines.push('sec users');
  if (users.length) lines.push(`getent passwd ${shqAll(users)}`);
  lines.push('sec groups');
  if (groups.length) lines.push(`getent group ${shqAll(groups)}`);
  lines.push('sec dkim');
  const dkim = dkimKeys(d);
  for (const k of dkim) lines.push(dkimPublicCommand(k.keyFile, k.domain, k.selector, 'printf \'%s\\t%s\\t%s\\t%s\\t%s\\n\''));
  lines.push('sec tls');
  if (d.tlsCert) lines.push(tlsFingerprintCommand(d.tlsCert));
  lines.push('sec commands');
  d.commands.forEach((c, i) => {
    if (c.creates !== undefined) lines.push(`[ -e ${shq(c.creates)} ] && echo ${i}`);
    else if (c.unless !== undefined) lines.push(`( ${c.unless} ) >/dev/null 2>&1 </dev/null && echo ${i}`);
  });
  return lines.join('\n');
}

/** Prints the SHA-256 fingerprint of a certificate file ("AB:CD:..."), nothing when it is missing or unreadable. */
export function tlsFingerprintCommand(cert: string): string {
  return `[ -f ${shq(cert)} ] && openssl x509 -in ${shq(cert)} -noout -fingerprint -sha256 2>/dev/null | sed 's/^.*=//'`;
}

/**
 * Prints, with `printf FORMAT domain selector algorithm bits public-key`, the public half of a DKIM key
 * file as DNS publishes it (p=). The algorithm and size are read from the key itself, never assumed from
 * the playbook: a key made for an older playbook is published as what it is.
 */
export function dkimPublicCommand(keyFile: string, domain: string, selector: string, printf: string): string {
  const k = shq(keyFile);
  return (
    `if [ -f ${k} ]; then t=$(openssl pkey -in ${k} -noout -text 2>/dev/null | head -n 1); case "$t" in ` +
    `*ED25519*) a=ed25519; b=256; p=$(openssl pkey -in ${k} -pubout -outform DER 2>/dev/null | tail -c 32 | base64 | tr -d '\\n');; ` +
    `*Private-Key*) a=rsa; b=$(printf '%s' "$t" | sed -n 's/.*(\\([0-9]*\\) bit.*/\\1/p'); p=$(openssl pkey -in ${k} -pubout -outform DER 2>/dev/null | base64 | tr -d '\\n');; ` +
    `*) a=; esac; [ -z "$a" ] || ${printf} ${shq(domain)} ${shq(selector)} "$a" "$b" "$p"; fi`
  );
}

/** DKIM key files of a desired host, as the dkim-keys component declares them. */
export function dkimKeys(d: DesiredHost): DesiredHost['dkimKeys'] {
  return d.dkimKeys;
}

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
