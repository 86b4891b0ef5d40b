/** `--debian RELEASE` of `sandbox up` and `test`: the Debian release the VPS containers are made of. */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { SUITE, SUITES } from '../testbed/recipes.js';

export function debianOption(c: Command): Command {
  return c.option(
    '--debian <release>',
    'the Debian release of the VPS containers: bookworm (12, Dovecot 2.3) or trixie (13, Dovecot 2.4)',
    (v: string) => {
      if (!(SUITES as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${SUITES.join(', ')}`);
      return v;
    },
    SUITE,
  );
}
