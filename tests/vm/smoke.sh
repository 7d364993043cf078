#!/usr/bin/env bash
# IPVS smoke test, run inside the VM by tests/vm/run (never on the host: it
# changes the kernel's IPVS table, which the VM alone owns).
#
# Loads ip_vs, creates a TCP service with two NAT real servers through
# ipvsadm, checks that `ipvsadm -Ln` shows them, and removes them again.
# Also prints the guest kernel and the IPVS modules it ships, so later tests
# know which schedulers exist.
set -euo pipefail

# guest.sh sets this; the host must never get these IPVS entries.
[ "${LBD_IN_VM:-}" = 1 ] || { echo "smoke.sh runs inside the VM only: use tests/vm/run" >&2; exit 2; }

echo "kernel: $(uname -r)"
echo "ipvs modules: $(ls "/lib/modules/$(uname -r)/kernel/net/netfilter/ipvs/" | sed 's/\.ko.*$//' | tr '\n' ' ')"

modprobe ip_vs
modprobe ip_vs_rr
modprobe ip_vs_wrr

fail() { echo "FAIL: $*" >&2; ipvsadm -Ln >&2; exit 1; }
trap 'ipvsadm -C' EXIT

vip=10.99.0.1:80
ipvsadm -C
ipvsadm -A -t "$vip" -s rr
ipvsadm -a -t "$vip" -r 10.99.0.11:80 -m -w 2
ipvsadm -a -t "$vip" -r 10.99.0.12:80 -m -w 2

out="$(ipvsadm -Ln)"
echo "$out"
# Columns: Forward Weight ActiveConn InActConn.
grep -Eq '^TCP  10\.99\.0\.1:80 rr *$' <<<"$out" || fail "service line missing"
for rip in 10.99.0.11 10.99.0.12; do
  grep -Eq "^  -> ${rip//./\\.}:80 +Masq +2 +0 +0 *\$" <<<"$out" || fail "real server $rip missing"
done
[ "$(grep -c -- '->' <<<"$out")" = 3 ] || fail "expected the header and two real servers"

ipvsadm -C
[ "$(ipvsadm -Ln | grep -c '^TCP')" = 0 ] || fail "ipvsadm -C left a service"
echo "smoke: ok"
