/** The outside client's SMTP transcripts (swaks, as recorded in the mail world) read back into outcomes. */
import { describe, expect, it } from 'vitest';
import { swaksCommand, swaksExchanges, swaksOutcome } from '../integration/support/client.js';

const EXIM_REFUSED_AT_DATA = `=== Trying 172.18.0.5:25...
=== Connected to 172.18.0.5.
<-  220 mail.ex.test ESMTP
 -> EHLO mail.sender.test
<-  250-mail.ex.test Hello mail.sender.test [172.18.0.4]
<-  250-SIZE 52428800
<-  250 HELP
 -> MAIL FROM:<billing@reject.test>
<-  250 OK
 -> RCPT TO:<alice@ex.test>
<-  250 Accepted
 -> DATA
<-  354 Enter message, ending with "." on a line by itself
 -> From: billing@reject.test
 -> Subject: Invoice
 ->
 -> Hello,
 -> .
<** 554-5.7.1 Rejected by the DMARC policy of the sender's domain:
<** 554 5.7.1 no aligned SPF or DKIM pass
 -> QUIT
<-  221 mail.ex.test closing connection
=== Connection closed with remote host.`;

const POSTFIX_RCPT = `=== Trying 172.18.0.7:25...
<-  220 mail.pf.test ESMTP
 -> EHLO mail.listed.test
<-  250-mail.pf.test
<-  250 CHUNKING
 -> MAIL FROM:<someone@listed.test>
<-  250 2.1.0 Ok
 -> RCPT TO:<alice@pf.test>
<** 554 5.7.1 Service unavailable; Client host [172.18.0.6] blocked using bl.blocklist.test; Listed by bl.blocklist.test: test client
 -> QUIT
<-  221 2.0.0 Bye`;

const SUBMISSION_DONE = `<-  220 mail.pf.test ESMTP
 -> EHLO mail.listed.test
<-  250-mail.pf.test
<-  250 STARTTLS
 -> STARTTLS
<-  220 2.0.0 Ready to start TLS
=== TLS started with cipher TLSv1.3:TLS_AES_256_GCM_SHA384:256
 ~> EHLO mail.listed.test
<~  250-mail.pf.test
<~  250 AUTH PLAIN LOGIN
 ~> AUTH PLAIN AGJvYkBwZi50ZXN0AGJvYi1TZWNyZXQtMg==
<~  235 2.7.0 Authentication successful
 ~> MAIL FROM:<bob@pf.test>
<~  250 2.1.0 Ok
 ~> RCPT TO:<alice@pf.test>
<~  250 2.1.5 Ok
 ~> DATA
<~  354 End data with <CR><LF>.<CR><LF>
 ~> Subject: from the hotel
 ~>
 ~> .
<~  250 2.0.0 Ok: queued as EBC982EE168
 ~> QUIT
<~  221 2.0.0 Bye`;

const AUTH_FAILED = `<-  220 mail.pf.test ESMTP
 -> EHLO mail.sender.test
<-  250 STARTTLS
 -> STARTTLS
<-  220 2.0.0 Ready to start TLS
 ~> EHLO mail.sender.test
<~  250 AUTH PLAIN LOGIN
 ~> AUTH PLAIN AGFsaWNlQHBmLnRlc3QAd3Jvbmc=
<~* 535 5.7.8 Error: authentication failed: (reason unavailable)
 ~> QUIT
<~  221 2.0.0 Bye`;

describe('outside client SMTP (swaks transcripts)', () => {
  it('pairs every reply, multi-line ones joined, with the line the client sent before it', () => {
    const ex = swaksExchanges(EXIM_REFUSED_AT_DATA);
    expect(ex.map((e) => [e.cmd, e.code])).toEqual([
      ['', 220],
      ['EHLO mail.sender.test', 250],
      ['MAIL FROM:<billing@reject.test>', 250],
      ['RCPT TO:<alice@ex.test>', 250],
      ['DATA', 354],
      ['.', 554],
      ['QUIT', 221],
    ]);
    expect(ex[1]!.lines).toEqual(['mail.ex.test Hello mail.sender.test [172.18.0.4]', 'SIZE 52428800', 'HELP']);
  });

  it("a refusal at the end of data, split over lines by Exim, reads as one line, as Postfix's", () => {
    expect(swaksOutcome(EXIM_REFUSED_AT_DATA)).toEqual({
      stage: 'data',
      reply: { code: 554, text: "554 5.7.1 Rejected by the DMARC policy of the sender's domain: no aligned SPF or DKIM pass" },
      rcpts: [{ code: 250, text: '250 Accepted' }],
    });
  });

  it('a refusal at RCPT, an AUTH failure after STARTTLS, and a session that delivered', () => {
    expect(swaksOutcome(POSTFIX_RCPT)).toEqual({
      stage: 'rcpt',
      reply: { code: 554, text: '554 5.7.1 Service unavailable; Client host [172.18.0.6] blocked using bl.blocklist.test; Listed by bl.blocklist.test: test client' },
      rcpts: [{ code: 554, text: '554 5.7.1 Service unavailable; Client host [172.18.0.6] blocked using bl.blocklist.test; Listed by bl.blocklist.test: test client' }],
    });
    expect(swaksOutcome(AUTH_FAILED)).toMatchObject({ stage: 'auth', reply: { code: 535, text: '535 5.7.8 Error: authentication failed: (reason unavailable)' } });
    expect(swaksOutcome(SUBMISSION_DONE)).toEqual({ stage: 'done', reply: { code: 250, text: '250 2.0.0 Ok: queued as EBC982EE168' }, rcpts: [{ code: 250, text: '250 2.1.5 Ok' }] });
  });

  it('a session cut off before the end of data is an error, not a pass', () => {
    expect(() => swaksOutcome('<-  220 mail.pf.test ESMTP\n -> EHLO x.test\n<-  250 OK\n=== Connection closed with remote host.')).toThrow(/ended before the end of data/);
  });

  it('quotes every argument for the shell; submission uses STARTTLS and AUTH PLAIN', () => {
    expect(swaksCommand({ server: '172.18.0.7', port: 587, helo: 'mail.listed.test', from: 'bob@pf.test', to: "o'neil@pf.test", auth: { user: 'bob@pf.test', password: 'a b$c' }, data: '' })).toBe(
      "swaks '--server' '172.18.0.7' '--port' '587' '--helo' 'mail.listed.test' '--from' 'bob@pf.test' '--to' 'o'\\''neil@pf.test' '--data' '-' '--timeout' '60' '--tls' '-a' 'PLAIN' '-au' 'bob@pf.test' '-ap' 'a b$c'",
    );
  });
});
