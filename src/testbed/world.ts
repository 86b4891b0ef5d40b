/**
 * The mail world in a box: on one Docker network of its own,
 * - `dns`: an authoritative BIND 9 (images/dns) for every zone the world or a test adds, the reverse
 *   zones of the network (PTR), RFC 2136 updates and AXFR with the TSIG key `mailops-tsig` only;
 *   everything else is forwarded to Docker's resolver. Every other container resolves through it
 *   alone, and it is published on 127.0.0.1 (the same port for TCP and UDP);
 * - `peer`: a strict receiving MTA of the domain peer.test (images/peer) that judges mail like a large
 *   provider (TLS, HELO, FCrDNS, SPF, DKIM, DMARC) and keeps every message it accepts; it also sends;
 * - `relay` (optional): a smarthost (images/relay) that relays for one login on 587/2525/465, to the peer;
 * - the VPS containers mailops applies to, each with a PTR record for its mail host name;
 * - outside clients (images/client: swaks, openssl, dig) that connect to the hosts like strangers on the
 *   Internet, each with a PTR record for its host name (a test adds the forward record when it wants FCrDNS).
 * Started in that order through testcontainers; stop() (or SIGINT/SIGTERM, unless persistent) removes
 * everything.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Box } from './containers.js';
import { removeContainers, startBox, startNetwork, testbedLabels } from './containers.js';
import type { Net } from './containers.js';
import type { RunResult } from './docker.js';
import { MAIL_PORTS, cleanupOnSignals, clusterOps, resolvConfCommand, settleAll, sshIdentity, startVpsBoxes } from './harness.js';
import type { VpsCluster } from './harness.js';
import type { Log } from './log.js';
import { silent } from './log.js';

/** The DNS server's own name (its A record is in the zone mailops.test, its PTR in the reverse zone). */
export const DNS_NAME = 'ns.mailops.test';
export const PEER_DOMAIN = 'peer.test';
export const PEER_HOSTNAME = 'mx.peer.test';
/** The smarthost's domain and host name (its A, PTR and an SPF record to include are in the world's DNS). */
export const RELAY_DOMAIN = 'relay.test';
export const RELAY_HOSTNAME = 'smtp.relay.test';
export const TSIG_KEY_NAME = 'mailops-tsig';
/** TTL of the records the world writes: short, so caches (OpenDKIM's libunbound) follow changes. */
export const WORLD_TTL = 60;

/** Shell, in the peer: every message it accepted, oldest first, one base64 line each. */
export const PEER_INBOX_COMMAND = `cd /home/inbox/Maildir && find new cur -type f -printf '%T@ %p\\n' | sort -n | while read -r _ p; do base64 -w0 "$p" && echo; done`;

/** The raw messages in PEER_INBOX_COMMAND's output. */
export const inboxMessages = (stdout: string): string[] =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((b) => Buffer.from(b, 'base64').toString('utf8'));

export interface WorldOptions {
  images: { vps: string; dns: string; peer?: string; relay?: string; client?: string };
  /** Start the smarthost (needs images.relay) with this one login. */
  relay?: { username: string; password: string };
  /** The VPS containers; hostname is the mail host name (its PTR record); image, another than images.vps (another release). */
  hosts: Array<{ name: string; hostname: string; image?: string }>;
  /** Outside clients (needs images.client); hostname is their PTR record. */
  clients?: Array<{ name: string; hostname: string }>;
  /** Start the strict peer (default true; needs images.peer). */
  peer?: boolean;
  /** Container and network names start with it (default mailops-t<random>). */
  prefix?: string;
  /** Keep the world when the process exits (the sandbox); tests leave it false. */
  persistent?: boolean;
  /** Where the SSH identity (id_ed25519) and the TSIG key file (mailops-tsig.key) are written. */
  keyDir?: string;
  /** VPS ports published on 127.0.0.1 (default MAIL_PORTS). */
  publish?: number[];
  log?: Log;
}

export interface WorldDns {
  container: string;
  /** Address on the world's network: the only resolver of the peer and the VPS containers. */
  ip: string;
  /** Port on 127.0.0.1, the same number for TCP and UDP. */
  port: number;
  /** The key in tsig-keygen format, on this machine (mode 0600). */
  keyFile: string;
  keyName: typeof TSIG_KEY_NAME;
  /** The server's own host name, the default NS of the zones the world adds. */
  name: typeof DNS_NAME;
}

export interface PeerMessage {
  from: string;
  to: string;
  subject: string;
  body?: string;
  /** More header fields (name → value). */
  headers?: Record<string, string>;
}

export interface WorldPeer {
  container: string;
  ip: string;
  domain: typeof PEER_DOMAIN;
  hostname: typeof PEER_HOSTNAME;
  /** The DKIM selector the peer signs with (its key is published as peer._domainkey.peer.test). */
  selector: 'peer';
  /** Every message the peer accepted, raw (header and body, as delivered to the Maildir), oldest first. */
  inbox(): Promise<string[]>;
  /** Waits for a message the peer accepted whose raw text contains `match` (or satisfies it). */
  waitFor(match: string | ((raw: string) => boolean), timeoutMs?: number): Promise<string>;
  /**
   * Sends a message from the peer (sendmail; OpenDKIM signs mail from @peer.test): to another domain
   * through its MX found in the world's DNS, to @peer.test through the peer's own port 25 (judged like
   * any other mail). Resolves with the Message-ID (without angle brackets) once the mail is queued.
   */
  send(o: PeerMessage): Promise<string>;
  /** The peer's log so far (Postfix, OpenDKIM, OpenDMARC, policyd-spf). */
  log(): string;
  /**
   * The peer also receives mail for `domain` (an outside domain a playbook forwards to): a zone whose MX
   * is the peer, and every address of it delivered to the peer's inbox. Idempotent.
   */
  acceptDomain(domain: string): Promise<void>;
}

export interface WorldRelay {
  container: string;
  ip: string;
  hostname: typeof RELAY_HOSTNAME;
  /** The SPF record senders include to allow it (`include:_spf.relay.test`: ip4 of the relay). */
  spfInclude: string;
  /** The smarthost's log so far (Postfix: every connection, login and relayed message). */
  log(): string;
}

export interface WorldClient {
  name: string;
  container: string;
  /** Address on the world's network: what the hosts see as the client's address. */
  ip: string;
  hostname: string;
}

export interface World {
  network: string;
  relay?: WorldRelay;
  /** The network's IPv4 subnet, e.g. 172.18.0.0/16. */
  subnet: string;
  dns: WorldDns;
  peer?: WorldPeer;
  /** The VPS containers (hosts have .ip on the world's network); vps.stop() removes only them. */
  vps: VpsCluster;
  /** The outside clients, in the order asked for (run commands in them with exec(client.container, ...)). */
  clients: WorldClient[];
  /** An empty primary zone (SOA + NS; in-zone NS names get an A record = the DNS server's IP); TSIG updates allowed. Idempotent. */
  addZone(domain: string, o?: { nameservers?: string[] }): Promise<void>;
  /** The PTR record of an address (replacing any), in the reverse zone of its /24, made on demand. */
  setPtr(ip: string, name: string): Promise<void>;
  /** An RFC 2136 update of a zone, signed with the key: nsupdate lines such as `update add NAME TTL TYPE DATA`. */
  setRecords(zone: string, lines: string[]): Promise<void>;
  /** Answers of the world's DNS (dig +short inside the DNS container), e.g. resolve('peer.test', 'MX'). */
  resolve(name: string, type?: string): Promise<string[]>;
  /** `sh -c COMMAND` as root in one of the world's containers (by container name). */
  exec(container: string, cmd: string, input?: string): Promise<RunResult>;
  stop(): Promise<void>;
}

const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function checkName(name: string, what: string): string {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (!DOMAIN_RE.test(n)) throw new Error(`${what}: not a domain name: ${JSON.stringify(name)}`);
  return n;
}

function checkIp(ip: string): [number, number, number, number] {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  const parts = m ? m.slice(1).map(Number) : [];
  if (parts.length !== 4 || parts.some((p) => p > 255)) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
  return parts as [number, number, number, number];
}

/** The reverse zone (/24) of an address and the name of its PTR record. */
export function reverseOf(ip: string): { zone: string; name: string } {
  const [a, b, c, d] = checkIp(ip);
  const zone = `${c}.${b}.${a}.in-addr.arpa`;
  return { zone, name: `${d}.${zone}` };
}

/** TXT record data as quoted character-strings of at most 255 bytes each (a 2048-bit DKIM key needs two). */
export function txtData(value: string): string {
  const chunks: string[] = [];
  for (let i = 0; i < value.length; i += 255) chunks.push(value.slice(i, i + 255));
  return (chunks.length ? chunks : ['']).map((c) => `"${c.replace(/["\\]/g, (x) => `\\${x}`)}"`).join(' ');
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A port free on 127.0.0.1 for both TCP and UDP right now. */
async function freeTcpUdpPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (port && udpFree) return port;
  }
  throw new Error('no port free for both TCP and UDP on 127.0.0.1');
}

const DNS_READY = 'rndc status >/dev/null 2>&1 && dig +time=1 +tries=1 @127.0.0.1 localhost A >/dev/null 2>&1';

function composeMessage(o: PeerMessage, id: string): string {
  const headers: Array<[string, string]> = [
    ['From', o.from],
    ['To', o.to],
    ['Subject', o.subject],
    ['Date', new Date().toUTCString().replace(/GMT$/, '+0000')],
    ['Message-ID', `<${id}>`],
    ['MIME-Version', '1.0'],
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Transfer-Encoding', '8bit'],
    ...Object.entries(o.headers ?? {}),
  ];
  for (const [k, v] of headers) if (/[\r\n]/.test(k + v)) throw new Error(`header ${k}: no line breaks allowed`);
  const body = (o.body ?? `Sent by the mail world's peer (${id}).`).replace(/\r?\n/g, '\n');
  return `${headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body.endsWith('\n') ? body : `${body}\n`}`;
}

export async function startWorld(o: WorldOptions): Promise<World> {
  const log = o.log ?? silent;
  const t0 = Date.now();
  const prefix = o.prefix ?? `mailops-t${randomBytes(3).toString('hex')}`;
  const persistent = o.persistent ?? false;
  const wantPeer = o.peer ?? true;
  if (wantPeer && !o.images.peer) throw new Error('startWorld: the peer needs images.peer');
  const hostNames = o.hosts.map((h) => h.name);
  const clientSpecs = o.clients ?? [];
  if (clientSpecs.length && !o.images.client) throw new Error('startWorld: the clients need images.client');
  const names = [...hostNames, ...clientSpecs.map((c) => c.name)];
  // The world's own containers are named with a double hyphen (`<prefix>--dns`), which no host name can
  // make (they begin with a letter or digit): a playbook may call its hosts dns, peer or relay.
  if (new Set(names).size !== names.length) throw new Error(`startWorld: host and client names must be unique: ${names.join(', ')}`);
  for (const h of [...o.hosts, ...clientSpecs]) checkName(h.hostname, `host ${h.name}`);
  const ownKeyDir = !o.keyDir;
  const keyDir = o.keyDir ?? mkdtempSync(join(tmpdir(), 'mailops-world-'));
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });

  const containers: string[] = [];
  const boxes = new Map<string, Box>();
  let net: Net | undefined;
  const stop = cleanupOnSignals(persistent, async () => {
    await removeContainers(containers);
    await net?.stop().catch(() => undefined);
    if (ownKeyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  try {
    const { identity, publicKey } = await sshIdentity(keyDir);
    net = await startNetwork(`${prefix}-net`);
    const network = net.name;
    const labels = testbedLabels(persistent);

    // 1. DNS, published on one port number for TCP and UDP (another run may take a port meanwhile: retry).
    const dnsName = `${prefix}--dns`;
    containers.push(dnsName);
    let dnsBox: Box | undefined;
    for (let attempt = 1; !dnsBox; attempt++) {
      const port = await freeTcpUdpPort();
      try {
        dnsBox = await startBox({
          image: o.images.dns,
          name: dnsName,
          hostname: 'ns',
          network,
          labels,
          ports: [
            { container: 53, protocol: 'tcp', host: port },
            { container: 53, protocol: 'udp', host: port },
          ],
          ready: DNS_READY,
          collectLog: true,
          startupTimeoutMs: 60_000,
        });
      } catch (e) {
        await removeContainers([dnsName]);
        if (attempt >= 5 || !/port is already allocated|address already in use/i.test(String((e as Error).message))) throw e;
      }
    }
    boxes.set(dnsName, dnsBox);
    const dnsIp = dnsBox.ip;
    const dnsPort = dnsBox.ports['53/tcp']!;
    const keyText = await dnsBox.exec('cat /etc/bind/mailops-tsig.key');
    if (keyText.code !== 0 || !keyText.stdout.includes(TSIG_KEY_NAME)) throw new Error(`the DNS container has no TSIG key: ${keyText.stderr}`);
    const keyFile = join(keyDir, `${TSIG_KEY_NAME}.key`);
    writeFileSync(keyFile, keyText.stdout, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    log(`dns ${dnsName} at ${dnsIp} (127.0.0.1:${dnsPort} tcp+udp)`);

    // DNS changes, one at a time (a zone is created on demand by whichever change needs it first).
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(fn: () => Promise<T>): Promise<T> => {
      const next = queue.then(fn, fn);
      queue = next.catch(() => undefined);
      return next;
    };
    const dnsExec = async (what: string, cmd: string, input?: string) => {
      const r = await dnsBox!.exec(cmd, input);
      if (r.code !== 0) throw new Error(`dns: ${what} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
      return r.stdout;
    };
    const nsupdate = (zone: string, lines: string[]) =>
      dnsExec(`update of ${zone}`, `nsupdate -k /etc/bind/${TSIG_KEY_NAME}.key`, ['server 127.0.0.1', `zone ${zone}`, ...lines.map((l) => (/^\s*(add|delete|del)\s/.test(l) ? `update ${l.trim()}` : l.trim())), 'send', ''].join('\n'));
    const addZoneNow = async (domain: string, nameservers: string[]) => {
      const zone = checkName(domain, 'addZone');
      const ns = nameservers.map((n) => checkName(n, `addZone ${zone}: nameserver`));
      if (!ns.length) throw new Error(`addZone ${zone}: no nameservers`);
      const file = `/var/lib/bind/${zone}.db`;
      const text = [
        `$TTL ${WORLD_TTL}`,
        `@ IN SOA ${ns[0]}. hostmaster.${zone}. 1 3600 600 86400 10`,
        ...ns.map((n) => `@ IN NS ${n}.`),
        ...ns.filter((n) => n === zone || n.endsWith(`.${zone}`)).map((n) => `${n}. IN A ${dnsIp}`),
        '',
      ].join('\n');
      const config = `{ type primary; file "${file}"; allow-update { key ${TSIG_KEY_NAME}; }; allow-transfer { key ${TSIG_KEY_NAME}; }; };`;
      await dnsExec(
        `adding the zone ${zone}`,
        `rndc zonestatus ${shq(zone)} >/dev/null 2>&1 && exit 0; cat > ${shq(file)} && chown bind:bind ${shq(file)} && named-checkzone -q ${shq(zone)} ${shq(file)} && rndc addzone ${shq(zone)} ${shq(config)}`,
        text,
      );
    };
    const addZone = (domain: string, z: { nameservers?: string[] } = {}) => serial(() => addZoneNow(domain, z.nameservers ?? [DNS_NAME]));
    const setPtr = (ip: string, name: string) =>
      serial(async () => {
        const r = reverseOf(ip);
        const target = checkName(name, `setPtr ${ip}`);
        await addZoneNow(r.zone, [DNS_NAME]);
        await nsupdate(r.zone, [`update delete ${r.name}. PTR`, `update add ${r.name}. ${WORLD_TTL} PTR ${target}.`]);
      });
    const setRecords = (zone: string, lines: string[]) => serial(() => nsupdate(checkName(zone, 'setRecords'), lines).then(() => undefined));
    const resolve = async (name: string, type = 'A') => {
      if (!/^[A-Za-z0-9]+$/.test(type)) throw new Error(`resolve: bad type ${type}`);
      const out = await dnsExec(`dig ${name} ${type}`, `dig +short +time=2 +tries=2 @127.0.0.1 ${shq(name)} ${type}`);
      return out.split('\n').map((l) => l.trim()).filter(Boolean);
    };

    // 2. The peer and the VPS containers, all resolving through the world's DNS alone.
    const peerName = `${prefix}--peer`;
    if (wantPeer) containers.push(peerName);
    const peerStart = wantPeer
      ? startBox({
          image: o.images.peer!,
          name: peerName,
          hostname: PEER_HOSTNAME,
          network,
          labels,
          env: { MAILOPS_RESOLVER: dnsIp },
          ready: '/usr/local/sbin/peer-ready',
          collectLog: true,
          startupTimeoutMs: 60_000,
        })
      : Promise.resolve(undefined);
    const relayName = `${prefix}--relay`;
    if (o.relay) {
      if (!o.images.relay) throw new Error('startWorld: the relay needs images.relay');
      containers.push(relayName);
    }
    const relayStart = o.relay
      ? startBox({
          image: o.images.relay!,
          name: relayName,
          hostname: RELAY_HOSTNAME,
          network,
          labels,
          env: { MAILOPS_RESOLVER: dnsIp, RELAY_USER: o.relay.username, RELAY_PASSWORD: o.relay.password },
          ready: '/usr/local/sbin/relay-ready',
          collectLog: true,
          startupTimeoutMs: 60_000,
        })
      : Promise.resolve(undefined);
    const vpsStart = startVpsBoxes({
      image: o.images.vps,
      images: Object.fromEntries(o.hosts.flatMap((h) => (h.image ? [[h.name, h.image]] : []))),
      names: hostNames,
      prefix,
      network,
      publish: o.publish ?? MAIL_PORTS,
      publicKey,
      persistent,
      dns: dnsIp,
      track: (c) => containers.push(c),
    });
    // Outside clients: no systemd, they sleep until used; the world's DNS is their only resolver too.
    const clientStart = settleAll(
      clientSpecs.map(async (c) => {
        const name = `${prefix}-${c.name}`;
        containers.push(name);
        const box = await startBox({ image: o.images.client!, name, hostname: c.hostname, network, labels });
        const r = await box.exec(resolvConfCommand(dnsIp));
        if (r.code !== 0) throw new Error(`setting the resolver of ${name} failed: ${r.stderr}`);
        return box;
      }),
    );
    // All settle before a failure is thrown, so cleanup finds every container that was started.
    const [peerSettled, vpsSettled, relaySettled, clientsSettled] = await Promise.allSettled([peerStart, vpsStart, relayStart, clientStart]);
    if (peerSettled.status === 'rejected') throw peerSettled.reason;
    if (relaySettled.status === 'rejected') throw relaySettled.reason;
    const relayBox = relaySettled.value;
    if (relayBox) boxes.set(relayName, relayBox);
    if (vpsSettled.status === 'rejected') throw vpsSettled.reason;
    if (clientsSettled.status === 'rejected') throw clientsSettled.reason;
    const clientBoxes = clientsSettled.value;
    for (const b of clientBoxes) boxes.set(b.name, b);
    const peerBox = peerSettled.value;
    const vpsBoxes = vpsSettled.value;
    for (const b of vpsBoxes.boxes) boxes.set(b.name, b);
    if (peerBox) boxes.set(peerName, peerBox);
    log(`peer and ${vpsBoxes.hosts.length} VPS container(s) up (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

    // 3. Zones: the DNS server's own name, peer.test, and the PTR of every container.
    await addZone('mailops.test');
    await setRecords('mailops.test', [`update add ${DNS_NAME}. ${WORLD_TTL} A ${dnsIp}`]);
    await setPtr(dnsIp, DNS_NAME);
    let peer: WorldPeer | undefined;
    if (peerBox) {
      const resolver = await peerBox.exec('cat /etc/resolv.conf');
      if (resolver.stdout.trim() !== `nameserver ${dnsIp}`) throw new Error(`the peer's resolver is not the world's DNS: ${resolver.stdout.trim()}`);
      const key = await peerBox.exec('openssl rsa -in /etc/opendkim/keys/peer.private -pubout -outform DER 2>/dev/null | base64 -w0');
      if (key.code !== 0 || !key.stdout.trim()) throw new Error(`reading the peer's DKIM key failed: ${key.stderr}`);
      await addZone(PEER_DOMAIN);
      await setRecords(PEER_DOMAIN, [
        `update add ${PEER_HOSTNAME}. ${WORLD_TTL} A ${peerBox.ip}`,
        `update add ${PEER_DOMAIN}. ${WORLD_TTL} MX 10 ${PEER_HOSTNAME}.`,
        `update add ${PEER_DOMAIN}. ${WORLD_TTL} TXT ${txtData(`v=spf1 ip4:${peerBox.ip} -all`)}`,
        `update add ${PEER_HOSTNAME}. ${WORLD_TTL} TXT ${txtData('v=spf1 a -all')}`,
        `update add peer._domainkey.${PEER_DOMAIN}. ${WORLD_TTL} TXT ${txtData(`v=DKIM1; k=rsa; p=${key.stdout.trim()}`)}`,
        `update add _dmarc.${PEER_DOMAIN}. ${WORLD_TTL} TXT ${txtData('v=DMARC1; p=reject')}`,
      ]);
      await setPtr(peerBox.ip, PEER_HOSTNAME);
      const box = peerBox;
      const inbox = async () => {
        const r = await box.exec(PEER_INBOX_COMMAND);
        if (r.code !== 0) throw new Error(`reading the peer's inbox failed: ${r.stderr}`);
        return inboxMessages(r.stdout);
      };
      peer = {
        container: peerName,
        ip: box.ip,
        domain: PEER_DOMAIN,
        hostname: PEER_HOSTNAME,
        selector: 'peer',
        inbox,
        waitFor: async (match, timeoutMs = 30_000) => {
          const ok = typeof match === 'string' ? (raw: string) => raw.includes(match) : match;
          const until = Date.now() + timeoutMs;
          for (;;) {
            const found = (await inbox()).find(ok);
            if (found !== undefined) return found;
            if (Date.now() > until) throw new Error(`no message in the peer's inbox matched within ${timeoutMs / 1000} s; the end of its log:\n${box.log().trim().split('\n').slice(-15).join('\n')}`);
            await new Promise((r) => setTimeout(r, 250));
          }
        },
        send: async (m) => {
          const addr = /^[^\s<>'"]+@[^\s<>'"]+$/;
          if (!addr.test(m.from) || !addr.test(m.to)) throw new Error(`send: bad address: ${m.from} -> ${m.to}`);
          const id = `${Date.now()}.${randomBytes(6).toString('hex')}@${PEER_DOMAIN}`;
          const r = await box.exec(`/usr/sbin/sendmail -i -f ${shq(m.from)} -- ${shq(m.to)}`, composeMessage(m, id));
          if (r.code !== 0) throw new Error(`sendmail in the peer failed (${r.code}): ${r.stderr.trim()}`);
          return id;
        },
        log: () => box.log(),
        acceptDomain: async (domain) => {
          const d = checkName(domain, 'acceptDomain');
          if (d === PEER_DOMAIN) return;
          await addZone(d);
          await setRecords(d, [`update delete ${d}. MX`, `update add ${d}. ${WORLD_TTL} MX 10 ${PEER_HOSTNAME}.`]);
          const r = await box.exec(
            `grep -qx ${shq(`@${d} inbox@localhost`)} /etc/postfix/virtual || { printf '%s\\n' ${shq(`@${d} inbox@localhost`)} >> /etc/postfix/virtual && postconf -e "relay_domains = $(postconf -h relay_domains) ${d}" && postfix reload; }`,
          );
          if (r.code !== 0) throw new Error(`the peer could not take mail for ${d}: ${r.stderr.trim()}`);
        },
      };
    }
    for (const [i, h] of vpsBoxes.hosts.entries()) await setPtr(h.ip, o.hosts[i]!.hostname);
    let relay: WorldRelay | undefined;
    if (relayBox) {
      await addZone(RELAY_DOMAIN);
      await setRecords(RELAY_DOMAIN, [
        `update add ${RELAY_HOSTNAME}. ${WORLD_TTL} A ${relayBox.ip}`,
        `update add ${RELAY_HOSTNAME}. ${WORLD_TTL} TXT ${txtData('v=spf1 a -all')}`,
        `update add _spf.${RELAY_DOMAIN}. ${WORLD_TTL} TXT ${txtData(`v=spf1 ip4:${relayBox.ip} -all`)}`,
      ]);
      await setPtr(relayBox.ip, RELAY_HOSTNAME);
      const box = relayBox;
      relay = { container: relayName, ip: box.ip, hostname: RELAY_HOSTNAME, spfInclude: `_spf.${RELAY_DOMAIN}`, log: () => box.log() };
    }
    const clients: WorldClient[] = clientBoxes.map((b, i) => ({ name: clientSpecs[i]!.name, container: b.name, ip: b.ip, hostname: clientSpecs[i]!.hostname }));
    for (const c of clients) await setPtr(c.ip, c.hostname);

    // The VPS cluster of the world: stop() removes only its containers.
    const vpsContainers = vpsBoxes.hosts.map((h) => h.container);
    const vps: VpsCluster = {
      network,
      hosts: vpsBoxes.hosts,
      identity,
      publicKey,
      ...clusterOps(new Map(vpsBoxes.boxes.map((b) => [b.name, b])), publicKey),
      stop: async () => {
        await removeContainers(vpsContainers);
        for (const c of vpsContainers) boxes.delete(c);
      },
    };
    log(`mail world ${prefix} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return {
      network,
      subnet: net.subnet,
      dns: { container: dnsName, ip: dnsIp, port: dnsPort, keyFile, keyName: TSIG_KEY_NAME, name: DNS_NAME },
      ...(peer ? { peer } : {}),
      ...(relay ? { relay } : {}),
      vps,
      clients,
      addZone,
      setPtr,
      setRecords,
      resolve,
      exec: async (container, cmd, input) => {
        const box = boxes.get(container);
        if (!box) throw new Error(`no container ${container} in this world (${[...boxes.keys()].join(', ')})`);
        return box.exec(cmd, input);
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
