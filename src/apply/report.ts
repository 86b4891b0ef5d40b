/** Reading the activation script's marked output lines. Pure. */
import { MARK } from './script.js';
import { dkimFromSpki } from '../facts/parse.js';

export interface ActivationReport {
  result: 'ok' | 'failed' | 'rolled-back' | 'rollback-failed' | 'interrupted' | 'unknown';
  /** Things that do not stop the run but deserve a look (a certificate that does not name the host). */
  warnings: string[];
  steps: string[];
  failures: Array<{ step: string; message: string; detail: string[] }>;
  dkim: Array<{ domain: string; selector: string; algorithm: 'rsa' | 'ed25519'; publicKey: string }>;
  /** SHA-256 of the certificate the services present after the run (hex, lower case). */
  tlsFingerprint?: string;
}

export function parseReport(stdout: string): ActivationReport {
  const r: ActivationReport = { result: 'unknown', steps: [], failures: [], dkim: [], warnings: [] };
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(`${MARK} `)) continue;
    const rest = line.slice(MARK.length + 1);
    const sp = rest.indexOf(' ');
    const kind = sp < 0 ? rest : rest.slice(0, sp);
    const body = sp < 0 ? '' : rest.slice(sp + 1);
    if (kind === 'step') r.steps.push(body);
    else if (kind === 'fail') {
      const i = body.indexOf(' ');
      r.failures.push({ step: i < 0 ? body : body.slice(0, i), message: i < 0 ? '' : body.slice(i + 1), detail: [] });
    } else if (kind === 'detail') r.failures[r.failures.length - 1]?.detail.push(body);
    else if (kind === 'result') r.result = body === 'ok' || body === 'failed' || body === 'rolled-back' || body === 'rollback-failed' || body === 'interrupted' ? body : 'unknown';
    else if (kind === 'warn') r.warnings.push(body);
    else if (kind === 'tls') {
      const f = body.trim().replace(/:/g, '').toLowerCase();
      if (/^[0-9a-f]{64}$/.test(f)) r.tlsFingerprint = f;
    } else if (kind === 'dkim') {
      const [domain, selector, spki] = body.split(' ');
      const key = domain && selector && spki ? dkimFromSpki(spki) : null;
      if (key) r.dkim.push({ domain: domain!, selector: selector!, algorithm: key.algorithm, publicKey: key.publicKey });
    }
  }
  return r;
}

/** One line per failure, with the checker's own message after it. */
export function describeFailures(r: ActivationReport): string {
  return r.failures.map((f) => [`${f.step}: ${f.message}`, ...f.detail.filter((d) => d.trim()).map((d) => `    ${d}`)].join('\n')).join('\n');
}
