/** The receiver's verdict on our mail (src/verify/verdict.ts), from raw messages as the strict peer delivers them. */
import { describe, expect, it } from 'vitest';
import { bounceFor, judge, verdictOf } from '../../src/verify/verdict.js';

const raw = (auth: string[]) =>
  [
    'Return-Path: <maria@riverside.test>',
    'Received: from post.riverside.test (post.riverside.test [172.23.0.3])',
    '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)',
    '\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)',
    '\t(No client certificate requested)',
    '\tby mx.peer.test (Postfix) with ESMTPS id 4C1F2A0123',
    '\tfor <verify@peer.test>; Tue, 24 Nov 2026 00:10:00 +0000 (UTC)',
    ...auth.map((a) => `Authentication-Results: mx.peer.test; ${a}`),
    'Authentication-Results: elsewhere.test; dkim=fail header.d=riverside.test',
    'From: <maria@riverside.test>',
    'Subject: mailops verify',
    '',
    'body',
  ].join('\r\n');

describe('judge: what the receiver said about a message of one of our domains', () => {
  const spfDmarc = ['spf=pass (sender SPF authorized) smtp.mailfrom=riverside.test', 'dmarc=pass (p=none dis=none) header.from=riverside.test'];

  it('a signing domain passes with its DKIM, SPF and DMARC, our HELO and PTR, over TLS', () => {
    const v = verdictOf(raw(['dkim=pass (4096-bit key) header.d=riverside.test header.i=@riverside.test header.a=rsa-sha256 header.s=r1 header.b=AbCd', ...spfDmarc]), 'mx.peer.test');
    expect(judge(v, 'riverside.test', 'post.riverside.test')).toEqual({
      problems: [],
      summary: 'dkim=pass (rsa-sha256, s=r1), spf=pass, dmarc=pass, HELO post.riverside.test, PTR post.riverside.test [172.23.0.3], over TLSv1.3',
    });
  });

  it('a signing domain without a DKIM result fails; one the playbook gives no key passes on SPF and DMARC alone', () => {
    const v = verdictOf(raw(spfDmarc), 'mx.peer.test');
    expect(judge(v, 'riverside.test', 'post.riverside.test').problems).toEqual(['no DKIM result for d=riverside.test']);
    expect(judge(v, 'riverside.test', 'post.riverside.test', { signs: false })).toEqual({
      problems: [],
      summary: 'no DKIM (riverside.test has no key in the playbook), spf=pass, dmarc=pass, HELO post.riverside.test, PTR post.riverside.test [172.23.0.3], over TLSv1.3',
    });
  });

  it('without DKIM, SPF and DMARC must still pass; a wrong HELO is named', () => {
    const v = verdictOf(raw(['spf=softfail smtp.mailfrom=riverside.test', 'dmarc=fail (p=reject) header.from=riverside.test']).replace('from post.riverside.test (', 'from localhost ('), 'mx.peer.test');
    expect(judge(v, 'riverside.test', 'post.riverside.test', { signs: false }).problems).toEqual(['spf=softfail', 'dmarc=fail', 'HELO localhost, not post.riverside.test']);
  });

  it('through a smarthost, HELO and PTR are the smarthost\'s: not held against our host name, and said so', () => {
    const v = verdictOf(raw(['dkim=pass header.d=riverside.test header.a=ed25519-sha256 header.s=r2', ...spfDmarc]).replace('from post.riverside.test (post.riverside.test [172.23.0.3])', 'from smtp.relay.test (smtp.relay.test [172.23.0.9])'), 'mx.peer.test');
    expect(judge(v, 'riverside.test', 'post.riverside.test').problems).toEqual(['HELO smtp.relay.test, not post.riverside.test', 'the receiver verified the client as smtp.relay.test (PTR), not post.riverside.test']);
    expect(judge(v, 'riverside.test', 'post.riverside.test', { relayed: true })).toEqual({
      problems: [],
      summary: 'dkim=pass (ed25519-sha256, s=r2), spf=pass, dmarc=pass, HELO smtp.relay.test, PTR smtp.relay.test [172.23.0.9] (the smarthost), over TLSv1.3',
    });
  });
});

describe('bounceFor: a delivery status notification for one recipient', () => {
  // As Postfix writes one: a recipient of an alias (Original-Recipient) that Dovecot's LMTP refused.
  const postfix = [
    'Return-Path: <>',
    'From: MAILER-DAEMON@mx1.example.test (Mail Delivery System)',
    'Subject: Undelivered Mail Returned to Sender',
    'To: tester@peer.test',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status;',
    '\tboundary="4Xk2.1764000000/mx1.example.test"',
    '',
    '--4Xk2.1764000000/mx1.example.test',
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'This is the mail system at host mx1.example.test.',
    '',
    '--4Xk2.1764000000/mx1.example.test',
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx1.example.test',
    'X-Postfix-Queue-ID: 4Xk2',
    'Arrival-Date: Tue, 25 Nov 2026 20:00:00 +0000 (UTC)',
    '',
    'Final-Recipient: rfc822; alice@example.test',
    'Original-Recipient: rfc822;sales@example.test',
    'Action: delivered',
    'Status: 2.0.0',
    '',
    'Final-Recipient: rfc822; bob@example.test',
    'Original-Recipient: rfc822;sales@example.test',
    'Action: failed',
    'Status: 5.2.2',
    'Remote-MTA: dns; mx1.example.test',
    'Diagnostic-Code: lmtp; 552 5.2.2 <bob@example.test> Quota exceeded (mailbox for',
    '    user is full)',
    '',
    '--4Xk2.1764000000/mx1.example.test',
    'Content-Description: Undelivered Message',
    'Content-Type: message/rfc822',
    '',
    'Subject: mailops test [t0k3n]',
    '',
    'hello',
    '--4Xk2.1764000000/mx1.example.test--',
    '',
  ].join('\r\n');
  // As Exim writes one: no Diagnostic-Code for a local transport, only the Status.
  const exim = [
    'From: Mail Delivery System <Mailer-Daemon@mx1.example.test>',
    'To: tester@peer.test',
    'Content-Type: multipart/report; report-type=delivery-status; boundary=1764000000-eximdsn-1',
    'MIME-Version: 1.0',
    '',
    '--1764000000-eximdsn-1',
    'Content-type: text/plain; charset=us-ascii',
    '',
    '  Bob@Example.test',
    '    LMTP error after end of data: 552 5.2.2 <bob@example.test> Quota exceeded',
    '',
    '--1764000000-eximdsn-1',
    'Content-type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx1.example.test',
    '',
    'Action: failed',
    'Final-Recipient: rfc822;Bob@Example.test',
    'Status: 5.0.0',
    '',
    '--1764000000-eximdsn-1--',
    '',
  ].join('\n');

  it('says what the server answered for that recipient, unfolded, without the diagnostic type; else its status', () => {
    expect(bounceFor(postfix, 'bob@example.test')).toBe('552 5.2.2 <bob@example.test> Quota exceeded (mailbox for user is full)');
    expect(bounceFor(exim, 'bob@example.test')).toBe('status 5.0.0');
  });

  it('nothing for a recipient delivered or not named, nor for a message that is not a delivery report', () => {
    expect(bounceFor(postfix, 'alice@example.test')).toBeUndefined();
    expect(bounceFor(postfix, 'carol@example.test')).toBeUndefined();
    // The same fields quoted in an ordinary message.
    expect(bounceFor(postfix.replace('multipart/report; report-type=delivery-status;', 'multipart/mixed;'), 'bob@example.test')).toBeUndefined();
  });
});
