#!/usr/bin/env bash
# usage: reconcile_bench.sh LBD_BEFORE LBD_AFTER [N] [FAIL]   (inside the VM: tests/vm/run)
#
# Reconcile benchmark of scripts/bench --part reconcile (issue 15): N real
# servers behind one virtual server, TCP_CHECK every second (retry 0), and
# FAIL of them made to fail at once (an nftables reject). For each binary,
# in the same boot: the netlink traffic of the window (messages and bytes
# on an nlmon device: requests, dumps and replies alike, both binaries
# measured the same way), the time from the reject until lbd has logged
# the removal of all FAIL servers, the table checked with ipvsadm at the
# end, and the largest gap between the node's VRRP adverts (advert_int 1 s)
# over the window. lbd's own IPVS work counters (SIGUSR1) are printed when
# the binary has them.
set -euo pipefail
[ "${LBD_IN_VM:-}" = 1 ] || { echo "reconcile_bench.sh runs inside the VM only" >&2; exit 2; }

before="${1:?usage: reconcile_bench.sh LBD_BEFORE LBD_AFTER [N] [FAIL]}"
after="${2:?usage: reconcile_bench.sh LBD_BEFORE LBD_AFTER [N] [FAIL]}"
n="${3:-1000}"
fail="${4:-100}"
window=25
work="$(mktemp -d)"

cleanup() {
  pkill -9 -f "http_responder $work/count" 2>/dev/null || true
  nft delete table inet lbdbench 2>/dev/null || true
  ipvsadm -C 2>/dev/null || true
}
trap cleanup EXIT

modprobe ip_vs
modprobe nlmon 2>/dev/null || true
ip link add vb0 type veth peer name vb1
ip addr add 10.77.0.1/24 dev vb0
ip link set vb0 up
ip link set vb1 up
ip route add local 10.200.0.0/16 dev lo
nl=0
if ip link add nlmon0 type nlmon 2>/dev/null; then
  ip link set nlmon0 up
  nl=1
fi

"${RESPONDER:?set RESPONDER to the http_responder binary}" "$work/count" >"$work/responder.log" 2>&1 &
for _ in $(seq 100); do grep -q listening "$work/responder.log" && break; sleep 0.1; done

addr() { printf '10.200.%d.%d' $(($1 / 250)) $(($1 % 250 + 1)); }
conf="$work/keepalived.conf"
{
  printf 'global_defs {\n  router_id bench\n}\n'
  printf 'vrrp_instance VI_B {\n  interface vb0\n  virtual_router_id 99\n  priority 255\n  advert_int 1\n  virtual_ipaddress {\n    10.77.0.100/24\n  }\n}\n'
  printf 'virtual_server 10.77.0.100 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n'
  for i in $(seq 0 $((n - 1))); do
    printf '  real_server %s 8080 {\n    TCP_CHECK {\n      connect_timeout 2\n      retry 0\n      warmup 0\n    }\n  }\n' "$(addr "$i")"
  done
  printf '}\n'
} >"$conf"
first="$(addr 0)"
last="$(addr $((fail - 1)))"

# run BINARY TAG: prints "nl_msgs nl_kib converge_ms dests_left max_gap_ms adverts"
run() {
  local bin="$1" tag="$2" pid t0 t1 caps=()
  ipvsadm -C
  "$bin" -f "$conf" --log-level info >"$work/$tag.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    [ "$(ipvsadm -Ln | grep -c -- '-> 10.200.')" -ge "$n" ] && break
    sleep 0.1
  done
  # Every server checked a few times.
  sleep 5
  tshark -n -i vb1 -f "ip proto 112" -a "duration:$window" -w "$work/$tag.vrrp.pcap" >/dev/null 2>&1 &
  caps+=($!)
  if [ "$nl" = 1 ]; then
    tshark -n -i nlmon0 -a "duration:$window" -w "$work/$tag.nl.pcap" >/dev/null 2>&1 &
    caps+=($!)
  fi
  sleep 3
  t0="$(date +%s%N)"
  nft add table inet lbdbench
  nft add chain inet lbdbench out '{ type filter hook output priority 0; }'
  nft add rule inet lbdbench out ip daddr "$first-$last" tcp dport 8080 reject with tcp reset
  for _ in $(seq 600); do
    [ "$(grep -c 'IPVS: remove real server' "$work/$tag.log")" -ge "$fail" ] && break
    sleep 0.1
  done
  t1="$(date +%s%N)"
  for c in "${caps[@]}"; do wait "$c" || true; done
  kill -USR1 "$pid"
  sleep 1
  local left gap msgs
  left="$(ipvsadm -Ln | grep -c -- '-> 10.200.' || true)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  nft delete table inet lbdbench
  gap="$(tshark -r "$work/$tag.vrrp.pcap" -T fields -e frame.time_epoch 2>/dev/null |
    awk 'NR > 1 { d = $1 - p; if (d > m) m = d } { p = $1; c++ } END { printf "%.1f %d", m * 1000, c }')"
  if [ "$nl" = 1 ]; then
    msgs="$(tshark -r "$work/$tag.nl.pcap" -T fields -e frame.len 2>/dev/null |
      awk '{ c++; b += $1 } END { printf "%d %.0f", c, b / 1024 }')"
  else
    msgs="- -"
  fi
  grep -o 'IPVS counters: .*' "$work/$tag.log" >&2 || echo "$tag: no IPVS counters (binary predates them)" >&2
  echo "$tag: rs_down in log: $(grep -c 'is down' "$work/$tag.log")" >&2
  echo "$msgs $(((t1 - t0) / 1000000)) $left $gap"
}

read -r b_msgs b_kib b_ms b_left b_gap b_n < <(run "$before" before)
read -r a_msgs a_kib a_ms a_left a_gap a_n < <(run "$after" after)
echo "Reconcile benchmark: $n real servers (TCP_CHECK every 1 s), $fail failing at once, ${window} s window (TCG VM)"
echo "| | before | after |"
echo "| --- | --- | --- |"
echo "| netlink messages in the window (nlmon) | $b_msgs | $a_msgs |"
echo "| netlink KiB in the window | $b_kib | $a_kib |"
echo "| reject -> all $fail removals logged (ms) | $b_ms | $a_ms |"
echo "| real servers in IPVS after (want $((n - fail))) | $b_left | $a_left |"
echo "| largest advert gap (interval 1000 ms) | $b_gap ms ($b_n adverts) | $a_gap ms ($a_n adverts) |"
