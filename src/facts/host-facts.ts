/**
 * The facts of a host, each as pyinfra's FactBase has them: the shell that gathers it and the parser of
 * what that shell prints, side by side. The fact script (script.ts) runs every command of a host's family
 * in one round trip, each under its section marker; parseFacts (parse.ts) hands each section to its
 * fact's parser. Recorded outputs in test/fixtures/facts keep the parsers honest.
 */
import type { DesiredHost } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';
import { parseDkim, parseGroups, parsePackages, parsePasswd, parseServices, parseSha256, parseStat, tlsFact } from './parse.js';
import { shq, shqAll, unitOf } from './shell.js';
import { parseLifecycle } from '../plan/dkim.js';

export interface Fact {
  /** The section of the fact script its command prints under. */
  section: string;
  /** Shell lines for the desired state of a host (none when nothing of its kind is managed). */
  command(d: DesiredHost): string[];
  /** Its part of HostFacts, from the lines of its section (`all`: every section, for a fact that joins two). */
  parse(lines: string[], all: ReadonlyMap<string, string[]>): Partial<HostFacts>;
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
  return dkimPublicWords(shq(keyFile), shq(domain), shq(selector), printf);
}

/** dkimPublicCommand on shell words (quoted values or "$variables"). */
function dkimPublicWords(k: string, domain: string, selector: string, printf: string): string {
  return (
    `if [ -f ${k} ]; then t=$(openssl pkey -in ${k} -noout -text 2>/dev/null | head -n 1); case "$t" in ` +
    `*ED25519*) a=ed25519; b=256; p=$(openssl pkey -in ${k} -pubout -outform DER 2>/dev/null | tail -c 32 | base64 | tr -d '\\n');; ` +
    `*Private-Key*) a=rsa; b=$(printf '%s' "$t" | sed -n 's/.*(\\([0-9]*\\) bit.*/\\1/p'); p=$(openssl pkey -in ${k} -pubout -outform DER 2>/dev/null | base64 | tr -d '\\n');; ` +
    `*) a=; esac; [ -z "$a" ] || ${printf} ${domain} ${selector} "$a" "$b" "$p"; fi`
  );
}

const STAT = `stat -c '%n\t%a\t%U\t%G' --`;
const nonEmpty = (lines: string[]) => lines.filter((l) => l.trim() !== '');

/** The facts that depend on what the playbook manages on a host of one family, in script order. */
export const FAMILY_FACTS: Fact[] = [
  {
    section: 'packages',
    command: (d) =>
      d.packages.length === 0
        ? []
        : [
            d.os.packageManager === 'apt'
              ? `dpkg-query -W -f='\${Package}\\t\${Version}\\t\${db:Status-Abbrev}\\n' ${shqAll(d.packages)} 2>/dev/null`
              : `rpm -q --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\tii \\n' ${shqAll(d.packages)} 2>/dev/null | grep '	'`,
          ],
    parse: (lines) => ({ packages: parsePackages(lines) }),
  },
  {
    // Content hashes here, owner and mode under "filestat": a file is known when it has both.
    section: 'files',
    command: (d) => {
      const files = [...d.files.map((f) => f.path), ...d.retired.files.map((f) => f.path)];
      return files.length ? [`sha256sum -- ${shqAll(files)} 2>/dev/null`, 'sec filestat', `${STAT} ${shqAll(files)} 2>/dev/null`] : ['sec filestat'];
    },
    parse: (lines, all) => {
      const stats = parseStat(all.get('filestat') ?? []);
      const files: HostFacts['files'] = {};
      for (const [path, sha256] of Object.entries(parseSha256(lines))) {
        const st = stats[path];
        if (st) files[path] = { sha256, ...st };
      }
      return { files };
    },
  },
  {
    section: 'dirs',
    command: (d) => (d.directories.length ? [`${STAT} ${shqAll(d.directories.map((x) => x.path))} 2>/dev/null`] : []),
    parse: (lines) => ({ directories: parseStat(lines) }),
  },
  {
    section: 'services',
    command: (d) => {
      const units = [...d.services.map((s) => s.unit), ...d.replaces.map((x) => x.unit), ...d.retired.units.map((x) => x.unit)].map(unitOf);
      return units.length ? [`systemctl show -p Id -p UnitFileState -p ActiveState -- ${shqAll(units)} 2>/dev/null`] : [];
    },
    parse: (lines) => ({ services: parseServices(lines) }),
  },
  {
    section: 'users',
    command: (d) => (d.users.length ? [`getent passwd ${shqAll(d.users.map((u) => u.name))}`] : []),
    parse: (lines) => ({ users: parsePasswd(lines) }),
  },
  {
    section: 'groups',
    command: (d) => (d.users.length ? [`getent group ${shqAll([...new Set(d.users.map((u) => u.group))])}`] : []),
    parse: (lines) => ({ groups: parseGroups(lines) }),
  },
  {
    section: 'dkim',
    // Every key file of the directory (<domain>.<selector>.key), whatever the playbook asks for now: keys
    // being replaced or retired are the host's too. Then the lifecycle file, line by line.
    command: (d) => {
      const dir = shq(d.os.paths.dkimKeys);
      return [
        `for k in ${dir}/*.key; do [ -f "$k" ] || continue; n=\${k##*/}; n=\${n%.key}; s=\${n##*.}; m=\${n%.*}; ${dkimPublicWords('"$k"', '"$m"', '"$s"', "printf '%s\\t%s\\t%s\\t%s\\t%s\\n'")}; done`,
        `[ -f ${dir}/lifecycle ] && sed 's/^/lifecycle\t/' ${dir}/lifecycle`,
      ];
    },
    parse: (lines) => {
      const lifecycle = lines.filter((l) => l.startsWith('lifecycle\t'));
      return { dkim: parseDkim(lines.filter((l) => !l.startsWith('lifecycle\t'))), ...(lifecycle.length ? { dkimLifecycle: parseLifecycle(lifecycle.map((l) => l.slice(10))) } : {}) };
    },
  },
  {
    section: 'tls',
    command: (d) => (d.tlsCert ? [tlsFingerprintCommand(d.tlsCert)] : []),
    parse: (lines) => tlsFact(lines),
  },
  {
    // The indexes of the commands whose creates/unless guard says they are done.
    section: 'commands',
    command: (d) =>
      d.commands.flatMap((c, i) => (c.creates !== undefined ? [`[ -e ${shq(c.creates)} ] && echo ${i}`] : c.unless !== undefined ? [`( ${c.unless} ) >/dev/null 2>&1 </dev/null && echo ${i}`] : [])),
    parse: (lines) => ({ commandsDone: nonEmpty(lines).map(Number).filter((n) => Number.isInteger(n)) }),
  },
];
