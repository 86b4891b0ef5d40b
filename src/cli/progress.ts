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
