/**
 * The integration files, longest first (their durations on a 2-core machine, in seconds, from a full run),
 * so that the workers finish at about the same time; a file not listed goes last.
 */
import { BaseSequencer } from 'vitest/node';
import type { TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  'mailops-test.test.ts': 702,
  'replication.test.ts': 549,
  'scenario.test.ts': 375,
  'limits.test.ts': 330,
  'faults.test.ts': 221,
  'hosts.test.ts': 147,
  'checkers.test.ts': 86,
  'deliverability.test.ts': 86,
  'inbound.test.ts': 84,
  'sandbox.test.ts': 76,
  'apply.test.ts': 37,
  'switch.test.ts': 34,
  'ssh-shared.test.ts': 29,
  'acme.test.ts': 25,
  'multihost.test.ts': 22,
  'world.test.ts': 21,
  'ssh.test.ts': 12,
  'testbed.test.ts': 9,
};

const weight = (s: TestSpecification) => SECONDS[s.moduleId.split('/').pop() ?? ''] ?? 0;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}
