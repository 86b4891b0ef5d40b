/** Progress on stderr: one live line per host on a terminal, plain lines otherwise (CI logs). */
import { bold } from './output.js';

export interface ProgressView {
  update(host: string, step: string): void;
  done(): void;
}

export function progressView(quiet = false): ProgressView {
  if (quiet) return { update: () => undefined, done: () => undefined };
  const tty = Boolean(process.stderr.isTTY) && process.env['TERM'] !== 'dumb';
  if (!tty) {
    return {
      update: (host, step) => process.stderr.write(`${host}: ${step}\n`),
      done: () => undefined,
    };
  }
  const lines = new Map<string, string>();
  let drawn = 0;
  const draw = () => {
    const width = process.stderr.columns || 100;
    if (drawn) process.stderr.write(`\x1b[${drawn}A`);
    for (const [h, s] of lines) process.stderr.write(`\x1b[2K${`${bold(h)}: ${s}`.slice(0, width + 8)}\n`);
    drawn = lines.size;
  };
  return {
    update: (host, step) => {
      lines.set(host, step);
      draw();
    },
    done: () => {
      drawn = 0;
    },
  };
}

/** Per-host step timings (apply --timings): how long each progress step of each host took. */
export interface Timings {
  /** Wraps a progress update: the previous step of the host ends now. */
  update(host: string, step: string): void;
  /** Every step, slowest first, as lines: "  41.2 s  mx1  packages dovecot-core ...". */
  report(): string[];
}

export function timings(now: () => number = () => performance.now()): Timings {
  const open = new Map<string, { step: string; at: number }>();
  const steps: Array<{ host: string; step: string; ms: number }> = [];
  const close = (host: string, at: number) => {
    const o = open.get(host);
    if (o) steps.push({ host, step: o.step, ms: at - o.at });
  };
  return {
    update: (host, step) => {
      const at = now();
      close(host, at);
      open.set(host, { step, at });
    },
    report: () => {
      const at = now();
      for (const h of [...open.keys()]) close(h, at);
      open.clear();
      const width = Math.max(0, ...steps.map((s) => s.host.length));
      return [...steps].sort((a, b) => b.ms - a.ms).map((s) => `${(s.ms / 1000).toFixed(1).padStart(7)} s  ${s.host.padEnd(width)}  ${s.step}`);
    },
  };
}
