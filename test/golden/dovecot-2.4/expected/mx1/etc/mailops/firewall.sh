#!/bin/sh
# Inbound firewall of mail.example.com, managed by mailops: loads table inet mailops, then also
# accepts every port sshd really listens on, so a firewall change can never lock SSH out.
set -e
nft -f /etc/mailops/firewall.nft
ports=$(sshd -T 2>/dev/null | awk '$1 == "port" { print $2 }' | sort -un | paste -sd, -)
if [ -n "$ports" ]; then nft add rule inet mailops input tcp dport "{ $ports }" accept; fi
exit 0
