# Junk filing of mail.limits.test, managed by mailops: local edits are overwritten.
# Run by Dovecot's LMTP before every delivery (sieve_before). Mail that rspamd judged spam but not bad enough
# to refuse (its action "add header" or "rewrite subject": the MTA wrote X-Spam-Status: Yes, ...) goes to
# the mailbox's Junk folder, made when it is missing.
require ["fileinto", "mailbox"];

if header :matches "X-Spam-Status" "Yes, *" {
  fileinto :create "Junk";
  stop;
}
