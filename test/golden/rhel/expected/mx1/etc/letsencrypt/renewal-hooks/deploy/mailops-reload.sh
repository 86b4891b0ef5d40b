#!/bin/sh
# certbot deploy hook, managed by mailops: the renewed certificate of mail.example.com goes live.
systemctl reload postfix
systemctl reload dovecot
systemctl reload nginx
exit 0
