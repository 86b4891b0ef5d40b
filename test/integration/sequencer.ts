/**
 * The integration files, longest first (their durations on a 2-core machine, in seconds, from a full run),
 * so that two workers finish at about the same time; a file not listed goes last.
 */
import { BaseSequencer } from 'vitest/node';
import type { TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  'mailops-test.test.ts': 700,
  'scenario.test.ts': 431,
  'limits.test.ts': 348,
  'faults.test.ts': 233,
  'replication.test.ts': 224,
  'hosts.test.ts': 175,
  'checkers.test.ts': 120,
  'inbound.test.ts': 119,
  'deliverability.test.ts': 109,
  'sandbox.test.ts': 84,
  'apply.test.ts': 56,
  'switch.test.ts': 41,
  'acme.test.ts': 32,
  'world.test.ts': 32,
  'ssh-shared.test.ts': 29,
  'multihost.test.ts': 26,
  'ssh.test.ts': 11,
  'testbed.test.ts': 9,
};

const weight = (s: TestSpecification) => SECONDS[s.moduleId.split('/').pop() ?? ''] ?? 0;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}
