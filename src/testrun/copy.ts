/**
 * The throwaway copy of a playbook that `mailops test` applies: the same mail stack, pointed at the
 * throwaway containers. Pure: the playbook's text and the world's facts in, the copy's text out, with a
 * note for everything that had to differ from the original.
 */
import { randomBytes } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { Document, YAMLMap } from 'yaml';

export interface ThrowawayHost {
  /** Address of the container on the test network (what the zones publish). */
  ip: string;
  /** SSH on 127.0.0.1. */
  sshPort: number;
  hostKey: string;
}

export interface ThrowawayWorld {
  hosts: Record<string, ThrowawayHost>;
  identity: string;
  dns: { ip: string; port: number; keyFile: string };
  /** The test network's smarthost, when the playbook has a relay. */
  relay?: { hostname: string; ports: number[]; spfInclude: string };
}

export interface ThrowawayCopy {
  text: string;
  /** What differs from the original, in words (printed, and in the report). */
  notes: string[];
  /** Environment variables the copy reads test passwords from (mailboxes with only a password_hash). */
  env: Record<string, string>;
}

const str = (m: YAMLMap, key: string): string | undefined => {
  const v = m.get(key);
  return typeof v === 'string' ? v : undefined;
};

/**
 * `baseDir`: the original playbook's directory (its relative `file:` references are made absolute).
 * `domains`: the playbook's domains (name servers inside them get the test DNS server's address).
 */
export function throwawayPlaybook(text: string, baseDir: string, world: ThrowawayWorld, domains: string[]): ThrowawayCopy {
  const doc = parseDocument(text) as Document.Parsed;
  const notes: string[] = [];
  const env: Record<string, string> = {};

  // Secret files: absolute, so the copy reads the same files from elsewhere.
  visit(doc, {
    Map(_, node) {
      const f = node.get('file');
      if (node.items.length === 1 && typeof f === 'string' && !isAbsolute(f) && !f.startsWith('~')) node.set('file', resolve(baseDir, f));
    },
  });

  const hosts = doc.get('hosts');
  if (isSeq(hosts)) {
    for (const h of hosts.items) {
      if (!isMap(h)) continue;
      const name = str(h, 'name');
      const t = name === undefined ? undefined : world.hosts[name];
      if (!t) continue;
      h.set('ssh', doc.createNode({ address: '127.0.0.1', port: t.sshPort, user: 'root', identity: world.identity, host_key: t.hostKey }));
      h.set('ipv4', t.ip);
      if (h.has('ipv6')) h.delete('ipv6');
      const os = str(h, 'os');
      if (os === 'rhel') {
        h.set('os', 'auto');
        notes.push(`host ${name}: os rhel is tested on the Debian test image (os: auto in the copy)`);
      }
    }
  }

  const inZone = (n: string) => domains.some((d) => n === d || n.endsWith(`.${d}`));
  const dns = doc.get('dns');
  if (isMap(dns)) {
    const ns = dns.get('nameservers');
    if (isSeq(ns)) {
      ns.items = ns.items.map((n) => {
        const name = isScalar(n) ? String(n.value) : isMap(n) ? str(n, 'name') : undefined;
        if (name === undefined || !inZone(name)) return n;
        return doc.createNode({ name, ipv4: world.dns.ip });
      }) as typeof ns.items;
    }
    dns.set('update', doc.createNode({ server: `127.0.0.1:${world.dns.port}`, key: { file: world.dns.keyFile } }));
  }

  const stack = doc.get('stack');
  if (isMap(stack)) {
    const tls = stack.get('tls');
    if (isMap(tls)) {
      const mode = str(tls, 'mode');
      if (mode === 'acme' || mode === 'files') {
        stack.set('tls', doc.createNode({ mode: 'self-signed' }));
        notes.push(`tls.mode ${mode} is tested with a self-signed certificate (the test network has ${mode === 'acme' ? 'no ACME server reaching it' : 'none of the certificate files of the real hosts'})`);
      }
    }
    const relay = stack.get('relay');
    if (isMap(relay) && world.relay) {
      const port = Number(relay.get('port') ?? 587);
      const original = str(relay, 'host') ?? '';
      relay.set('host', world.relay.hostname);
      if (!world.relay.ports.includes(port)) relay.set('port', 587);
      notes.push(`stack.relay: the test network's smarthost ${world.relay.hostname} (with the same login) stands in for ${original}`);
      // The SPF includes that allow the real smarthost name nothing the test network can resolve: the
      // stand-in's own include takes their place (mail through it is judged by SPF as the real one's is).
      const ds = doc.get('domains');
      for (const d of isSeq(ds) ? ds.items : []) {
        const inc = isMap(d) ? d.getIn(['spf', 'include']) : undefined;
        if (!isMap(d) || !isSeq(inc)) continue;
        const foreign = inc.items.map((i) => (isScalar(i) ? String(i.value) : '')).filter((i) => i && !inZone(i));
        if (!foreign.length) continue;
        const kept = inc.items.filter((i) => !(isScalar(i) && foreign.includes(String(i.value))));
        inc.items = [...kept, doc.createNode(world.relay.spfInclude)] as typeof inc.items;
        notes.push(`domain ${String(d.get('name'))}: spf.include ${foreign.join(', ')} → ${world.relay.spfInclude}, the include of the stand-in smarthost`);
      }
    }
  }

  // Mailboxes with only a password hash: nobody knows their password, so the copy gets a test password.
  const ds = doc.get('domains');
  let n = 0;
  if (isSeq(ds)) {
    for (const d of ds.items) {
      if (!isMap(d)) continue;
      const mbs = d.get('mailboxes');
      if (!isSeq(mbs)) continue;
      for (const m of mbs.items) {
        if (!isMap(m) || m.has('password') || !m.has('password_hash')) continue;
        const name = `MAILOPS_TEST_PASSWORD_${++n}`;
        env[name] = randomBytes(12).toString('hex');
        m.delete('password_hash');
        m.set('password', doc.createNode({ env: name }));
        notes.push(`mailbox ${String(m.get('name'))}@${String(d.get('name'))}: only a password_hash is given, so the throwaway copy logs in with a test password of its own`);
      }
    }
  }
  return { text: doc.toString(), notes, env };
}
