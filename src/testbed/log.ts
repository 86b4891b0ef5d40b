/** Progress lines for slow steps (image builds take a minute or more the first time). */

export type Log = (line: string) => void;

export const silent: Log = () => undefined;

export interface Progress {
  /** Feed every output line of the slow step here. */
  onLine(line: string): void;
  /** Stops the heartbeat. */
  done(): void;
}

/**
 * Follows a slow step's output: lines that `notable` picks are logged at once, and every `everyMs`
 * a heartbeat says how long the step has run and what it printed last.
 */
export function progress(label: string, log: Log, notable: (line: string) => string | undefined, everyMs = 15_000): Progress {
  const t0 = Date.now();
  let last = '';
  const timer = setInterval(() => {
    const s = Math.round((Date.now() - t0) / 1000);
    log(`${label}: still working (${s} s)${last ? `: ${last.slice(0, 100)}` : ''}`);
  }, everyMs);
  timer.unref();
  return {
    onLine(line: string) {
      const t = line.trim();
      if (!t) return;
      last = t;
      const shown = notable(t);
      if (shown !== undefined) log(`${label}: ${shown.slice(0, 120)}`);
    },
    done() {
      clearInterval(timer);
    },
  };
}

export function seconds(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}
