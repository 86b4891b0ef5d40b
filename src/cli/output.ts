/** Where commands write: results on stdout, human text on stderr; colour only on a terminal. */
import type { Diagnostic } from '../model/diagnostic.js';
import { formatDiagnostic } from '../model/diagnostic.js';

const useColor = (): boolean => Boolean(process.stderr.isTTY) && !process.env['NO_COLOR'] && process.env['TERM'] !== 'dumb';

const paint = (code: string, s: string) => (useColor() ? `\x1b[${code}m${s}\x1b[0m` : s);
export const red = (s: string) => paint('31', s);
export const yellow = (s: string) => paint('33', s);
export const green = (s: string) => paint('32', s);
export const bold = (s: string) => paint('1', s);

export function info(line: string): void {
  process.stderr.write(`${line}\n`);
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printDiagnostics(ds: Diagnostic[]): void {
  for (const d of ds) info(d.severity === 'error' ? red(formatDiagnostic(d)) : yellow(formatDiagnostic(d)));
}
