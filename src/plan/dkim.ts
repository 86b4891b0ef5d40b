/**
 * A DKIM key on the host that is not of the type or size the playbook asks for. The key in place keeps
 * signing and is published as what it is (its algorithm is read from the key itself), so mail still
 * verifies; the plan says how to move to the new key. Pure.
 */
import type { DesiredHost } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';

const kind = (algorithm: string, bits?: number) => (algorithm === 'ed25519' ? 'ed25519' : `${algorithm}-${bits ?? '?'}`);

export function dkimKeyWarnings(desired: DesiredHost, facts: HostFacts): string[] {
  const out: string[] = [];
  for (const k of desired.dkimKeys) {
    const f = facts.dkim[`${k.selector}._domainkey.${k.domain}`];
    if (!f) continue;
    const has = kind(f.algorithm, f.bits);
    const wants = kind(k.algorithm, k.bits);
    if (f.algorithm !== k.algorithm || (f.bits !== undefined && f.bits !== k.bits)) {
      out.push(
        `DKIM key ${k.selector}._domainkey.${k.domain} on the host is ${has}, the playbook asks for ${wants}: the ${has} key keeps signing and stays published as ${has}; ` +
          `to change it, remove ${k.keyFile} on the host, and the next apply makes a ${wants} key and publishes it`,
      );
    }
  }
  return out;
}
