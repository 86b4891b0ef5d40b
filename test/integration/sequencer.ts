/**
 * The integration files, longest first (their durations on a 2-core machine, in seconds), so that two
 * workers finish at about the same time; a file not listed goes last.
 */
import { BaseSequencer } from 'vitest/node';
import type { TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  'limits.test.ts': 408,
  'replication.test.ts': 380,
  'faults.test.ts': 362,
  'hosts.test.ts': 309,
  'mailops-test.test.ts': 330,
  'deliverability.test.ts': 223,
  'scenario.test.ts': 195,
  'inbound.test.ts': 176,
  'apply.test.ts': 122,
  'multihost.test.ts': 100,
  'checkers.test.ts': 82,
  'switch.test.ts': 82,
  'acme.test.ts': 82,
  'sandbox.test.ts': 69,
  'world.test.ts': 28,
  'ssh-shared.test.ts': 22,
  'ssh.test.ts': 13,
  'testbed.test.ts': 12,
};

const weight = (s: TestSpecification) => SECONDS[s.moduleId.split('/').pop() ?? ''] ?? 0;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}
