/** The plan's account of a secret passwd-file (the Dovecot users file), with plain data: texts in, lines out. */
import { describe, expect, it } from 'vitest';
import { accountChanges, formatAccountChanges, parsePasswdFile, passwdFileDiff, quotaOf } from '../../src/plan/secret-diff.js';
import { fileDiff } from '../../src/plan/diff.js';

const H1 = '{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0';
const H2 = '{SHA512-CRYPT}$6$oyvIyBTnicTIyblH$yyZ1q19V3EbumYQZ/87ia/lEWSb5R.zh3iJgZnY1J8oShWgzULScP0Ip9fVQZluX9JE.XBM9OT9taWzuDGw5I/';
const H3 = '{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuOabcdefghijklmnopqrstuvwxyz01234';
const HASHES = [H1, H2, H3];

/** A users file line as templates/dovecot/users.hbs writes it. */
const line = (address: string, hash: string, quota?: string, home?: string) =>
  `${address}:${hash}:5000:5000::${home ?? `/var/vmail/${address.split('@')[1]}/${address.split('@')[0]}`}::${quota ? `userdb_quota_rule=*:storage=${quota}` : ''}`;
const file = (...lines: string[]) => `${lines.join('\n')}\n`;

/** Nothing that looks like a password hash, nor any of ours. */
function noHash(text: string): void {
  for (const h of HASHES) {
    expect(text).not.toContain(h);
    expect(text).not.toContain(h.split('$').pop()!.slice(0, 20));
  }
  expect(text).not.toMatch(/\{[A-Z0-9-]+-CRYPT\}|\$[256]y?\$/);
}

describe('passwd-file parsing', () => {
  it('reads the fields, extra fields with ":" in them, and skips blank and comment lines', () => {
    const m = parsePasswdFile(`# users\n\n${line('alice@example.com', H1, '2G')}\n${line('bob@example.com', H2)}\r\n`)!;
    expect([...m.keys()]).toEqual(['alice@example.com', 'bob@example.com']);
    expect(m.get('alice@example.com')).toEqual({
      user: 'alice@example.com',
      password: H1,
      uid: '5000',
      gid: '5000',
      gecos: '',
      home: '/var/vmail/example.com/alice',
      shell: '',
      extra: [['userdb_quota_rule', '*:storage=2G']],
    });
    expect(quotaOf(m.get('alice@example.com')!)).toBe('2G');
    expect(quotaOf(m.get('bob@example.com')!)).toBeNull();
    expect(quotaOf(parsePasswdFile('a@b.c:x:1:1::/h::quota_rule=*:storage=10M nologin')!.get('a@b.c')!)).toBe('10M');
  });

  it('is not a passwd-file: a line without a password field, a user twice, a name with spaces', () => {
    expect(parsePasswdFile('-----BEGIN PRIVATE KEY-----\nMIIEv\n')).toBeNull();
    expect(parsePasswdFile(file(line('a@example.com', H1), line('a@example.com', H2)))).toBeNull();
    expect(parsePasswdFile('a user:x\n')).toBeNull();
    expect(parsePasswdFile('')?.size).toBe(0);
  });
});

describe('per-mailbox changes', () => {
  const before = file(line('alice@example.com', H1, '2G'), line('bob@example.com', H2), line('carol@example.com', H3, '1G'), line('dave@example.com', H3));

  it('added, removed, quota old → new, password changed yes/no, other fields by name', () => {
    const after = file(
      line('alice@example.com', H1, '5G'), // quota up, same password
      line('bob@example.com', H3), // new password
      line('carol@example.com', H3), // quota removed
      line('dave@example.com', H3, undefined, '/srv/mail/dave'), // moved
      line('erin@example.com', H1, '3G'), // new mailbox
    ).replace(/^dave@example\.com:(.*):5000::/m, 'dave@example.com:$1:5001::');
    const changes = accountChanges(parsePasswdFile(before)!, parsePasswdFile(after)!);
    expect(changes).toEqual([
      { account: 'alice@example.com', action: 'update', password: false, quota: { before: '2G', after: '5G' }, fields: [] },
      { account: 'bob@example.com', action: 'update', password: true, fields: [] },
      { account: 'carol@example.com', action: 'update', password: false, quota: { before: '1G', after: null }, fields: [] },
      { account: 'dave@example.com', action: 'update', password: false, fields: ['gid', 'home'] },
      { account: 'erin@example.com', action: 'add', quota: '3G' },
    ]);
    const removed = accountChanges(parsePasswdFile(before)!, parsePasswdFile(file(line('alice@example.com', H1, '2G')))!);
    expect(formatAccountChanges(removed)).toEqual(['- mailbox bob@example.com', '- mailbox carol@example.com', '- mailbox dave@example.com']);
    expect(passwdFileDiff('/etc/dovecot/users', before, after)!.split('\n')).toEqual([
      '--- /etc/dovecot/users (secret: password hashes not shown; 5 mailboxes changed)',
      '~ mailbox alice@example.com: quota 2G → 5G; password changed: no',
      '~ mailbox bob@example.com: password changed: yes',
      '~ mailbox carol@example.com: quota 1G → none; password changed: no',
      '~ mailbox dave@example.com: password changed: no; other fields changed: gid, home',
      '+ mailbox erin@example.com (quota 3G)',
    ]);
  });

  it('a quota change alone is one line (the issue: it showed as "content changed, not shown")', () => {
    const after = before.replace('storage=2G', 'storage=4G');
    const d = fileDiff('/etc/dovecot/users', before, after, true, 'f'.repeat(64));
    expect(d).toBe('--- /etc/dovecot/users (secret: password hashes not shown; 1 mailbox changed)\n~ mailbox alice@example.com: quota 2G → 4G; password changed: no');
    noHash(d);
  });

  it('a quota added to a mailbox that had none; other extra fields by name, never their values', () => {
    const after = before.replace(/^(dave@example\.com:.*::)$/m, '$1userdb_quota_rule=*:storage=500M userdb_mail=maildir:~/secret-place');
    const d = passwdFileDiff('/etc/dovecot/users', before, after)!;
    expect(d.split('\n').slice(1)).toEqual(['~ mailbox dave@example.com: quota none → 500M; password changed: no; other fields changed: userdb_mail']);
    expect(d).not.toContain('secret-place');
    // A rule that changes in something else than its storage limit is named too.
    const limits = before.replace('storage=2G', 'storage=2G:messages=1000');
    expect(passwdFileDiff('/etc/dovecot/users', before, limits)!.split('\n').slice(1)).toEqual(['~ mailbox alice@example.com: password changed: no; other fields changed: quota rule']);
  });

  it('a new file lists its mailboxes; a reordered one says no mailbox changed', () => {
    expect(fileDiff('/etc/dovecot/users', undefined, before, true)).toBe(
      [
        '--- /etc/dovecot/users (new, secret: password hashes not shown; 4 mailboxes)',
        '+ mailbox alice@example.com (quota 2G)',
        '+ mailbox bob@example.com',
        '+ mailbox carol@example.com (quota 1G)',
        '+ mailbox dave@example.com',
      ].join('\n'),
    );
    const reordered = file(...before.trimEnd().split('\n').reverse());
    expect(fileDiff('/etc/dovecot/users', before, reordered, true, 'f'.repeat(64))).toBe(
      '--- /etc/dovecot/users (secret: password hashes not shown; no mailbox changed, only the order or the layout of the file)',
    );
  });

  it('what is not a passwd-file, or whose host text was not fetched, is still only "changed, not shown"', () => {
    const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';
    expect(fileDiff('/etc/ssl/k.pem', key.replace('MIIEvQ', 'MIIEvA'), key, true, 'f'.repeat(64))).toBe('--- /etc/ssl/k.pem (secret: content changed, not shown; now 3 lines)');
    expect(fileDiff('/etc/ssl/k.pem', undefined, key, true)).toBe('--- /etc/ssl/k.pem (new, secret: content not shown, 3 lines)');
    expect(fileDiff('/etc/dovecot/users', undefined, before, true, 'f'.repeat(64))).toBe('--- /etc/dovecot/users (secret: content changed, not shown; now 4 lines)');
    // A host file that is not a passwd-file (hand-edited into something else): no per-mailbox account.
    expect(fileDiff('/etc/dovecot/users', `${key}${before}`, before, true, 'f'.repeat(64))).toBe('--- /etc/dovecot/users (secret: content changed, not shown; now 4 lines)');
  });

  it('never prints a password field, even one hidden in a mailbox name', () => {
    const evil = file(line('alice@example.com', H1), `${H2}:${H2}:5000:5000::/x::`);
    expect(passwdFileDiff('/etc/dovecot/users', before, evil)).toBeNull();
    expect(fileDiff('/etc/dovecot/users', before, evil, true, 'f'.repeat(64))).toBe('--- /etc/dovecot/users (secret: content changed, not shown; now 2 lines)');
  });
});
