/**
 * The connection broker (see shared.ts): a background process that holds SSH connections for the runs of
 * one user and runs their commands over them. Each connection is dropped MAILOPS_SSH_PERSIST seconds after
 * its last command; the broker exits when it holds none and no run has asked for that long.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, unlinkSync } from 'node:fs';
import { connect as unixConnect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { UserError } from '../errors.js';
import { ChannelOpenError } from './exec.js';
import type { ConnectOptions, ExecBufferResult } from './connection.js';
import { frame, readFrames } from './frames.js';
import { shq } from '../facts/shell.js';
import type { BrokerError, BrokerRequest, WarmRequest } from './shared.js';
import { connect } from './ssh2.js';
import type { SshConnection } from './ssh2.js';

/** How long a connection that has sat idle may take to open a channel before it is taken for dead. */
const REUSE_OPEN_MS = 5000;
/** How long a command run ahead waits for its run to ask for it. */
const AHEAD_KEPT_MS = 60_000;
/** How many runs' connections (by their origin) the broker remembers for `warm`. */
const ORIGINS_KEPT = 64;

/** sshd's host key files, in its default place. */
const HOST_KEY_FILES = '/etc/ssh/ssh_host_*_key.pub';

/**
 * Reads host public key files with shell builtins into $keys, each line after its file's name and a tab:
 * the part of a command run ahead that tells whether the host still holds the key it proved
 * (stillHoldsKey). Only the file that held it as the connection was made, when known (the shell reads byte
 * by byte: a host's three files are some 900 bytes, an Ed25519 one 100). What it reads is printed in one
 * write, with the line that ends it (one SSH packet, not one a line).
 */
const hostKeys = (file?: string) =>
  `keys=$(for f in ${file ? shq(file) : HOST_KEY_FILES}; do [ -r "$f" ] && while IFS= read -r l || [ -n "$l" ]; do printf '%s\\t%s\\n' "$f" "$l"; done < "$f"; done)`;
const HOST_KEYS_END = '@@mailops-host-keys-end';

interface Held {
  conn: Promise<SshConnection>;
  /** Commands running over it now. */
  busy: number;
  idle?: NodeJS.Timeout;
  /** The last command run over it that may run ahead (ExecOptions.prefetch): the fact script. */
  ahead?: string;
  /**
   * The host's key file that held the key it proved, read once the connection was made: false when none
   * did, null when it could not tell.
   */
  keyInFiles?: Promise<string | false | null>;
  /** The same, once known. */
  keyFile?: string | false | null;
}

/** A command run ahead for a run's session, from its `open` or its `warm`. */
interface Ahead {
  command: string;
  /** Its result; null when it failed (the run then asks again). */
  result: Promise<ExecBufferResult | null>;
  /**
   * The host key file that holds the key the connection proved, read by the same channel first: false
   * when none does, or the channel did not open (the connection is dead); null when it could not tell.
   */
  keys: Promise<string | false | null>;
  timer: NodeJS.Timeout;
}

/** The SHA-256 of a file's contents ('missing' when it cannot be read). */
function digestOf(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return 'missing';
  }
}

/**
 * Which connection a request wants: everything that decides what `connect` would do, and whom it reaches:
 * the identity file's contents, and the known_hosts file's when no host key is pinned (an edited entry is
 * checked again by a new connection).
 */
export function connectionKey(req: Pick<BrokerRequest, 'opts' | 'agent'>): string {
  const o = req.opts;
  const identity = o.identity !== undefined ? digestOf(o.identity) : '';
  const knownHosts = o.hostKey === undefined ? digestOf(o.knownHostsFile) : '';
  const what = [o.name, o.address, o.port, o.user, o.identity ?? '', identity, req.agent ?? '', o.hostKey ?? '', o.knownHostsFile, knownHosts, o.acceptNew, o.timeout ?? '', o.keepalive ?? ''];
  return createHash('sha256').update(JSON.stringify(what)).digest('hex');
}

/**
 * Which of the host's public key files (`file`, else those in sshd's default place) holds the key it proved
 * at the handshake: false when none does, null when the connection does not answer within REUSE_OPEN_MS.
 */
async function keyInFiles(conn: SshConnection, file?: string): Promise<string | false | null> {
  try {
    const r = await conn.execBuffer(`${hostKeys(file)}; printf '%s\\n' "$keys"`, { root: false, step: 'read the host keys', openTimeout: REUSE_OPEN_MS, timeout: REUSE_OPEN_MS / 1000 });
    return fileHolding(r.stdout.toString('utf8'), conn.hostKey);
  } catch {
    return null;
  }
}

/** The file whose public key line (`file<TAB>type base64 comment`) holds this key; false when none. */
const fileHolding = (lines: string, key: string | undefined): string | false => {
  for (const l of lines.split('\n')) {
    const tab = l.indexOf('\t');
    if (tab > 0 && l.slice(tab + 1).trim().split(/\s+/)[1] === key) return l.slice(0, tab);
  }
  return false;
};

/**
 * Whether a connection about to be reused still reaches a host that holds the key it proved: when its key
 * was in the key files as the connection was made, it must still be (keys made anew on the host, while
 * sshd keeps the sessions it has, end the connection). A host that keeps its keys elsewhere cannot be
 * asked this way: its connection is reused, as OpenSSH's ControlPersist reuses one. `read`: what a command
 * run ahead read of the key files already (Ahead.keys).
 */
async function stillHoldsKey(h: Held, conn: SshConnection, read?: Promise<string | false | null>): Promise<boolean> {
  const atConnect = await h.keyInFiles;
  // It did not answer when it was made (a host that stopped at once): made anew.
  if (atConnect === null) return false;
  if (atConnect === false || atConnect === undefined) return true;
  // The same file must hold it still.
  const known = read ? await read : null;
  if (known !== null) return known === atConnect;
  return (await keyInFiles(conn, atConnect)) === atConnect;
}

export interface BrokerOptions {
  /** The socket to listen on. */
  path: string;
  /** Seconds a connection is kept after its last use, and the broker after its last request. */
  persist: number;
  /** Aborting it closes everything at once (tests). */
  stop?: AbortSignal;
}

/** Serve until idle; resolves when the broker has closed everything. */
export async function serveBroker(bo: BrokerOptions): Promise<void> {
  const held = new Map<string, Held>();
  const ahead = new Map<string, Ahead>();
  let active = 0;
  let idleExit: NodeJS.Timeout | undefined;
  let finished: () => void = () => undefined;
  const done = new Promise<void>((r) => (finished = r));

  const drop = (key: string, h: Held) => {
    if (held.get(key) === h) held.delete(key);
    if (h.idle) clearTimeout(h.idle);
    h.conn.then((c) => c.close()).catch(() => undefined);
  };
  const touch = () => {
    if (idleExit) clearTimeout(idleExit);
    idleExit = undefined;
    if (active === 0 && held.size === 0) idleExit = setTimeout(() => void shutdown(), bo.persist * 1000);
  };
  const release = (key: string, h: Held) => {
    h.busy--;
    if (h.busy === 0 && held.get(key) === h) {
      if (h.idle) clearTimeout(h.idle);
      h.idle = setTimeout(() => {
        drop(key, h);
        touch();
      }, bo.persist * 1000);
    }
  };

  /** The live connection for this request, made when there is none; `fresh` when it was made now. */
  const acquire = async (req: BrokerRequest): Promise<{ key: string; h: Held; conn: SshConnection; fresh: boolean }> => {
    const key = connectionKey(req);
    let h = held.get(key);
    let fresh = false;
    if (h) {
      const c = await h.conn.catch(() => null);
      if (!c || c.lost !== null) {
        drop(key, h);
        h = undefined;
      }
    }
    if (!h) {
      fresh = true;
      // connect reads the agent's socket from the environment, before its first await.
      if (req.agent !== undefined) process.env['SSH_AUTH_SOCK'] = req.agent;
      else delete process.env['SSH_AUTH_SOCK'];
      h = { conn: connect(req.opts), busy: 0 };
      held.set(key, h);
      const mine = h;
      h.conn.catch(() => {
        if (held.get(key) === mine) held.delete(key);
      });
    }
    h.busy++;
    if (h.idle) clearTimeout(h.idle);
    h.idle = undefined;
    try {
      const conn = await h.conn;
      // What the host's key files say now, for the runs that reuse the connection (stillHoldsKey).
      if (fresh && !h.keyInFiles) {
        const held = h;
        h.keyInFiles = keyInFiles(conn);
        void h.keyInFiles.then((f) => (held.keyFile = f));
      }
      return { key, h, conn, fresh };
    } catch (e) {
      h.busy--;
      throw e;
    }
  };

  const handle = async (sock: Socket, req: BrokerRequest, stdin: Buffer | undefined, abort: AbortController) => {
    const send = (type: 'o' | 'e' | 'r' | 'x', payload: Buffer | string) => {
      if (!sock.destroyed) sock.write(frame(type, payload));
    };
    const result = (r: ExecBufferResult) => send('r', JSON.stringify(r.signal ? { code: r.code, signal: r.signal } : { code: r.code }));
    const fail = (e: unknown) => {
      const err: BrokerError = { message: (e as Error)?.message ?? String(e), user: e instanceof UserError };
      send('x', JSON.stringify(err));
    };
    let got: Awaited<ReturnType<typeof acquire>> | undefined;
    /** The held connection given up (dead, or the host's keys changed): a new one, made with every check. */
    const renew = async (g: NonNullable<typeof got>) => {
      drop(g.key, g.h);
      release(g.key, g.h);
      got = undefined;
      got = await acquire(req);
      return got;
    };
    try {
      got = await acquire(req);
      if (req.op === 'open') {
        if (req.origin && req.run) remember(req.origin, req.run, got.key);
        if (!got.fresh) {
          // The run's fact script, as the last run of this connection had it: started by the run's `warm`
          // as it began, else now, while the run renders its hosts. It only reads, and the run takes its
          // answer only if it asks for the very same script.
          const early = req.run ? ahead.get(warmSession(req.run, got.key)) : undefined;
          if (early && req.session) {
            ahead.delete(warmSession(req.run!, got.key));
            keep(req.session, early);
          } else if (got.h.ahead && req.session) runAhead(req.session, got.key, got.h, got.conn, got.h.ahead);
          // A host whose keys were made anew since (sshd keeps the sessions it has): the connection goes, and
          // a new one is checked against the pin or known_hosts, as a direct connect would be.
          if (!(await stillHoldsKey(got.h, got.conn, req.session ? ahead.get(req.session)?.keys : undefined))) {
            if (req.session) ahead.delete(req.session);
            await renew(got);
          }
        }
        return send('r', JSON.stringify({ ok: true }));
      }
      if (req.prefetch && req.root === undefined && req.command) {
        got.h.ahead = req.command;
        const early = req.session ? ahead.get(req.session) : undefined;
        if (early) {
          ahead.delete(req.session!);
          clearTimeout(early.timer);
          const r = early.command === req.command ? await early.result : null;
          if (r) {
            if (r.stdout.length) send('o', r.stdout);
            if (r.stderr.length) send('e', r.stderr);
            return result(r);
          }
        }
      }
      const run = (c: SshConnection, reused: boolean) =>
        c.execBuffer(req.command ?? 'true', {
          ...(req.root !== undefined ? { root: req.root } : {}),
          ...(req.timeout !== undefined ? { timeout: req.timeout } : {}),
          ...(req.step !== undefined ? { step: req.step } : {}),
          ...(stdin ? { stdin } : {}),
          ...(reused ? { openTimeout: REUSE_OPEN_MS } : {}),
          signal: abort.signal,
          onStdoutBytes: (d) => send('o', d),
          onStderrBytes: (d) => send('e', d),
        });
      let r;
      try {
        r = await run(got.conn, !got.fresh);
      } catch (e) {
        // A connection that had sat idle and cannot open a channel any more is dead (the host went away
        // without closing it): the command never started, so it runs once more over a new connection.
        if (!(e instanceof ChannelOpenError) || got.fresh) throw e;
        r = await run((await renew(got)).conn, false);
      }
      result(r);
    } catch (e) {
      fail(e);
    } finally {
      handled.add(abort);
      if (got) release(got.key, got.h);
      sock.end();
    }
  };
  /** The requests answered: their socket's close has nothing left to stop (no abort, whose reason costs a stack). */
  const handled = new WeakSet<AbortController>();

  /**
   * Run a command ahead for a session; kept for it a while, then dropped. The same channel reads the host's
   * key files first (Ahead.keys): the run's reuse of the connection needs no command of its own for them.
   */
  const runAhead = (session: string, key: string, h: Held, conn: SshConnection, command: string) => {
    h.busy++;
    if (h.idle) clearTimeout(h.idle);
    h.idle = undefined;
    let setKeys: (v: string | false | null) => void = () => undefined;
    const keys = new Promise<string | false | null>((r) => (setKeys = r));
    const end = Buffer.from(`${HOST_KEYS_END}\n`);
    let seen: Buffer = Buffer.alloc(0);
    let head = -1;
    // Through the shell kept open on the host: no channel, login shell or sh to start (kept-shell.ts).
    const result = conn
      .execKept(`${h.keyFile === false ? 'keys=' : hostKeys(h.keyFile ?? undefined)}\nprintf '%s\\n%s\\n' "$keys" ${HOST_KEYS_END}\n${command}`, {
        step: 'gather facts',
        openTimeout: REUSE_OPEN_MS,
        onStdoutBytes: (d) => {
          if (head >= 0) return;
          seen = Buffer.concat([seen, d]);
          const i = seen.indexOf(end);
          if (i < 0 || (i > 0 && seen[i - 1] !== 0x0a)) return;
          head = i + end.length;
          setKeys(fileHolding(seen.subarray(0, i).toString('utf8'), conn.hostKey));
        },
      })
      .then((r): ExecBufferResult | null => (head < 0 ? null : { ...r, stdout: r.stdout.subarray(head) }))
      .catch((e) => {
        // A channel that did not open: the connection is dead, and is made anew (stillHoldsKey says no).
        if (e instanceof ChannelOpenError) setKeys(false);
        return null;
      })
      .finally(() => {
        setKeys(null);
        release(key, h);
      });
    keep(session, { command, result, keys });
  };

  /** A command run ahead, kept for a session for AHEAD_KEPT_MS, then dropped (a run that never asked for it). */
  const keep = (session: string, a: Omit<Ahead, 'timer'> & { timer?: NodeJS.Timeout }) => {
    if (a.timer) clearTimeout(a.timer);
    ahead.set(session, { ...a, timer: setTimeout(() => ahead.delete(session), AHEAD_KEPT_MS) });
  };

  /**
   * The connections each origin (a run's playbook and flags, shared.ts) opened in its last run, for the
   * next run of that origin to warm: the broker's memory of who asks for what, nothing else.
   */
  const origins = new Map<string, { run: string; keys: Set<string> }>();
  const remember = (origin: string, run: string, key: string) => {
    let o = origins.get(origin);
    if (!o || o.run !== run) {
      origins.delete(origin);
      o = { run, keys: new Set() };
      origins.set(origin, o);
      if (origins.size > ORIGINS_KEPT) origins.delete(origins.keys().next().value!);
    }
    o.keys.add(key);
  };
  const warmSession = (run: string, key: string) => `warm ${run} ${key}`;
  /**
   * A run has begun (before it read its playbook): each connection its origin opened last time, when held
   * and idle, starts its fact script now, as its `open` would later; the run's `open` takes it over.
   */
  const warm = (req: WarmRequest) => {
    const o = origins.get(req.origin);
    if (!o) return;
    for (const key of o.keys) {
      const h = held.get(key);
      if (!h?.ahead || ahead.has(warmSession(req.run, key))) continue;
      const command = h.ahead;
      void h.conn
        .then((conn) => {
          if (conn.lost === null && held.get(key) === h) runAhead(warmSession(req.run, key), key, h, conn, command);
        })
        .catch(() => undefined);
    }
  };

  const server: Server = createServer((sock) => {
    active++;
    touch();
    const abort = new AbortController();
    let req: BrokerRequest | WarmRequest | undefined;
    let started = false;
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (!handled.has(abort)) abort.abort();
      active--;
      touch();
    });
    readFrames(sock, (type, payload) => {
      if (started) return;
      if (type === 'q' && !req) {
        try {
          req = JSON.parse(payload.toString('utf8')) as BrokerRequest | WarmRequest;
        } catch {
          return void sock.destroy();
        }
        if (req.op === 'warm') {
          started = true;
          warm(req);
          sock.end(frame('r', JSON.stringify({ ok: true })));
        } else if (!req.stdin) {
          started = true;
          void handle(sock, req, undefined, abort);
        }
      } else if (type === 'i' && req && req.op !== 'warm') {
        started = true;
        void handle(sock, req, payload, abort);
      } else sock.destroy();
    });
  });

  const shutdown = async () => {
    if (idleExit) clearTimeout(idleExit);
    for (const a of ahead.values()) clearTimeout(a.timer);
    ahead.clear();
    server.close();
    try {
      unlinkSync(bo.path);
    } catch {
      // another broker's socket took its place, or it is gone already
    }
    await Promise.all([...held.entries()].map(([k, h]) => drop(k, h)));
    finished();
  };

  await listen(server, bo.path);
  bo.stop?.addEventListener('abort', () => void shutdown());
  touch();
  return done;
}

/**
 * Listen on `path`: on a socket of our own first, renamed into place, so that a run never finds a socket no
 * broker listens on yet. When a broker answers there already, this one is not needed (rejects).
 */
async function listen(server: Server, path: string): Promise<void> {
  if (await answers(path)) throw new Error(`a broker listens on ${path} already`);
  const mine = `${path}.${process.pid}`;
  try {
    unlinkSync(mine);
  } catch {
    // not there
  }
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(mine, () => {
      server.off('error', fail);
      ok();
    });
  });
  renameSync(mine, path);
}

function answers(path: string): Promise<boolean> {
  return new Promise((r) => {
    const s = unixConnect(path);
    s.on('connect', () => {
      s.destroy();
      r(true);
    });
    s.on('error', () => r(false));
  });
}
