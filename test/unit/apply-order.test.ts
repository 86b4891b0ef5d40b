/** The order of apply across hosts (mailbox hosts and backup MXs), with plain data: recipient changes in, phases out. */
import { describe, expect, it } from 'vitest';
import { applyOrder, notAppliedReason, recipientChange, recipientsOf, runPhases } from '../../src/apply/order.js';
import type { RecipientChange } from '../../src/apply/order.js';
import type { DesiredHost } from '../../src/model/desired.js';
import type { FileFact, HostFacts } from '../../src/model/facts.js';
import type { Host } from '../../src/model/site.js';

const mb = (name: string): RecipientChange => ({ name, role: 'mailbox', gained: [], lost: [] });
const bk = (name: string, gained: string[] = [], lost: string[] = []): RecipientChange => ({ name, role: 'backup-mx', gained, lost });

describe('applyOrder', () => {
  it('no backup MX changes its recipients: one phase of every host, in the playbook order', () => {
    expect(applyOrder([mb('mx1'), mb('mx2'), bk('mx3')])).toEqual([{ hosts: ['mx1', 'mx2', 'mx3'], why: 'no backup MX changes its recipients: every host at once' }]);
    expect(applyOrder([mb('mx1')])).toEqual([{ hosts: ['mx1'], why: 'no backup MX changes its recipients: every host at once' }]);
    expect(applyOrder([])).toEqual([]);
  });

  it('recipients added: the mailbox hosts (in parallel) before the backup MXs learn them', () => {
    expect(applyOrder([bk('mx3', ['bob@example.com']), mb('mx1'), mb('mx2'), bk('mx4')])).toEqual([
      { hosts: ['mx1', 'mx2'], why: 'mx3 will accept new recipients: the mailbox hosts accept them first' },
      { hosts: ['mx3', 'mx4'], why: 'after the mailbox hosts (mx1, mx2)' },
    ]);
  });

  it('recipients removed: the backup MXs stop accepting them before the mailbox hosts drop them', () => {
    expect(applyOrder([mb('mx1'), bk('mx2', [], ['bob@example.com'])])).toEqual([
      { hosts: ['mx2'], why: 'mx2 will refuse removed recipients: the backup MXs stop accepting them first' },
      { hosts: ['mx1'], why: 'after the backup MXs (mx2)' },
    ]);
  });

  it('added and removed in one run: the mailbox hosts first (the backup keeps accepting the removed ones until its phase)', () => {
    expect(applyOrder([mb('mx1'), bk('mx2', ['new@example.com'], ['old@example.com'])]).map((p) => p.hosts)).toEqual([['mx1'], ['mx2']]);
  });

  it('only backups selected (--host mx2): one phase, nothing to wait for', () => {
    expect(applyOrder([bk('mx2', ['new@example.com'])])).toEqual([{ hosts: ['mx2'], why: 'no backup MX changes its recipients: every host at once' }]);
  });
});

describe('recipientChange', () => {
  const host = (role: Host['role']) => ({ name: 'mx2', role }) as Host;
  const desired = (content: string) => ({ files: [{ path: '/etc/postfix/relay_recipients', content }] }) as unknown as DesiredHost;
  const facts = (files: HostFacts['files']) => ({ files }) as unknown as HostFacts;
  const file = (content?: string) => ({ sha256: 'x', owner: 'root', group: 'root', mode: '0644', ...(content !== undefined ? { content } : {}) }) as FileFact;

  it('reads both MTAs\' formats; comments and blank lines are not recipients', () => {
    expect(recipientsOf('# header\nalice@example.com OK\n@Example.com OK\n\n')).toEqual(['alice@example.com', '@example.com']);
    expect(recipientsOf('# header\nalice@example.com:\nbob@example.com:\n')).toEqual(['alice@example.com', 'bob@example.com']);
  });

  it('a new map gains every recipient; a changed one gains and loses by address; an unchanged one (text not read) nothing', () => {
    const d = desired('# x\nalice@example.com OK\ncarol@example.com OK\n');
    expect(recipientChange(host('backup-mx'), d, facts({}))).toEqual({ name: 'mx2', role: 'backup-mx', gained: ['alice@example.com', 'carol@example.com'], lost: [] });
    expect(recipientChange(host('backup-mx'), d, facts({ '/etc/postfix/relay_recipients': file('# x\nalice@example.com OK\nbob@example.com OK\n') }))).toEqual({ name: 'mx2', role: 'backup-mx', gained: ['carol@example.com'], lost: ['bob@example.com'] });
    expect(recipientChange(host('backup-mx'), d, facts({ '/etc/postfix/relay_recipients': file() }))).toEqual({ name: 'mx2', role: 'backup-mx', gained: [], lost: [] });
  });

  it('a host without a recipient map (a mailbox host) has no recipient change of its own', () => {
    expect(recipientChange(host('mailbox'), { files: [{ path: '/etc/postfix/main.cf', content: 'x' }] } as unknown as DesiredHost, facts({}))).toEqual({ name: 'mx2', role: 'mailbox', gained: [], lost: [] });
  });
});

describe('runPhases', () => {
  const phases = [
    { hosts: ['mx1', 'mx3'], why: 'first' },
    { hosts: ['mx2'], why: 'second' },
  ];

  it('a phase starts only when the one before it has finished; hosts of a phase run together; outcomes keep the playbook order', async () => {
    const log: string[] = [];
    const run = async (name: string) => {
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, name === 'mx1' ? 20 : 1));
      log.push(`end ${name}`);
      return { name, ok: true };
    };
    const out = await runPhases(phases, ['mx1', 'mx2', 'mx3'], run, (name) => ({ name, ok: false }));
    expect(out.map((o) => o.name)).toEqual(['mx1', 'mx2', 'mx3']);
    expect(log).toEqual(['start mx1', 'start mx3', 'end mx3', 'end mx1', 'start mx2', 'end mx2']);
  });

  it('a failure in a phase: its other hosts still run, later phases do not, and say why per host', async () => {
    const ran: string[] = [];
    const out = await runPhases(
      phases,
      ['mx1', 'mx2', 'mx3'],
      async (name) => {
        ran.push(name);
        return { name, ok: name !== 'mx1', error: name === 'mx1' ? 'validate postfix check failed' : undefined };
      },
      (name, failed) => ({ name, ok: false, error: notAppliedReason({ name, role: 'backup-mx' }, failed) }),
    );
    expect(ran).toEqual(['mx1', 'mx3']);
    expect(out).toEqual([
      { name: 'mx1', ok: false, error: 'validate postfix check failed' },
      { name: 'mx2', ok: false, error: 'not applied: mx1 failed first, so mx2 keeps its old recipients (it accepts exactly what it accepted before this run)' },
      { name: 'mx3', ok: true, error: undefined },
    ]);
  });

  it('what a mailbox host keeps when a backup MX failed first', () => {
    expect(notAppliedReason({ name: 'mx1', role: 'mailbox' }, ['mx2'])).toBe('not applied: mx2 failed first, so mx1 keeps its old mailboxes and aliases (run apply again once mx2 converges)');
  });
});
