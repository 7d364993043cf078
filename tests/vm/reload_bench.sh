#!/usr/bin/env bash
# usage: reload_bench.sh LBD [INSTANCES] [SERVICES]   (inside the VM: tests/vm/run)
#
# Reload benchmark of scripts/bench --part reload (issue 16): one lbd with
# INSTANCES VRRP instances (default 100, owners at priority 255, advert_int
# 1 s, one VIP each) and SERVICES IPVS virtual servers (default 10000, one
# real server each, no checks). Once the table is full, the unchanged file
# is reloaded (SIGHUP) three times. Reported: the time from SIGHUP to lbd's
# "reloaded" line, the IPVS write operations and kernel reads the reloads
# cost (lbd's SIGUSR1 counters, before and after), address changes seen by
# `ip monitor` (want 0), the largest gap between any instance's adverts over
# the reloads (interval 1000 ms), and, when lbd serves its API, the time and
# size of a /metrics scrape and of /status, and the RSS before and after 200
# API requests.
set -euo pipefail
[ -n "${BENCH_TRACE:-}" ] && set -x
exec 2>&1 # the VM runner shows stdout
[ "${LBD_IN_VM:-}" = 1 ] || { echo "reload_bench.sh runs inside the VM only" >&2; exit 2; }
lbd="${1:?usage: reload_bench.sh LBD [INSTANCES] [SERVICES]}"
ni="${2:-100}"
ns="${3:-10000}"
work="$(mktemp -d)"
sock="$work/lbd.sock"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  ipvsadm -C 2>/dev/null || true
}
trap cleanup EXIT
modprobe ip_vs
ip link add rb0 type veth peer name rb1
ip addr add 10.78.0.1/16 dev rb0
ip link set rb0 up
ip link set rb1 up
conf="$work/keepalived.conf"
{
  printf 'global_defs {\n  router_id bench\n}\n'
  for i in $(seq 1 "$ni"); do
    printf 'vrrp_instance VI_%d {\n  interface rb0\n  virtual_router_id %d\n  priority 255\n  advert_int 1\n' "$i" "$i"
    printf '  virtual_ipaddress {\n    10.78.%d.%d/16\n  }\n}\n' $((i / 250 + 1)) $((i % 250 + 1))
  done
  awk -v n="$ns" 'BEGIN {
    for (i = 0; i < n; i++) {
      printf "virtual_server 10.79.%d.%d 80 {\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n", int(i / 250), i % 250 + 1
      printf "  real_server 10.80.%d.%d 80 {\n    weight 1\n  }\n}\n", int(i / 250), i % 250 + 1
    }
  }'
} >"$conf"
counters() { # the last SIGUSR1 IPVS counters line's "dumps ops" fields
  kill -USR1 "$pid"
  local want=$(($(grep -c 'IPVS counters:' "$work/lbd.log" || true) + 1))
  # The IPVS thread answers between table reads (a 10 000-service read
  # takes seconds under TCG).
  local end=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(grep -c 'IPVS counters:' "$work/lbd.log" || true)" -ge "$want" ] && break
    sleep 0.2
  done
  grep 'IPVS counters:' "$work/lbd.log" | tail -n1 | sed -E 's/.*dumps=([0-9]+) .*ops=([0-9]+) .*/\1 \2/'
}
rss() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }

t_start="$(date +%s%N)"
"$lbd" -f "$conf" --api-socket "$sock" --log-level info >"$work/lbd.log" 2>&1 &
pid=$!
end=$((SECONDS + 300))
while [ "$SECONDS" -lt "$end" ]; do
  [ "$(ipvsadm -Ln | grep -c -- '-> 10.80.')" -ge "$ns" ] && break
  sleep 0.1
done
t_full="$(date +%s%N)"
got="$(ipvsadm -Ln | grep -c -- '-> 10.80.' || true)"
[ "$got" -ge "$ns" ] || { echo "only $got of $ns services applied" >&2; tail -n 20 "$work/lbd.log" >&2; exit 1; }
for _ in $(seq 100); do
  [ "$(ip -o addr show dev rb0 | grep -c '10.78.[0-9]*.[0-9]*/16' || true)" -gt "$ni" ] && break
  sleep 0.1
done
read -r d0 o0 < <(counters)
tshark -n -s 64 -i rb1 -f "ip proto 112" -w "$work/vrrp.pcap" >"$work/tshark.log" 2>&1 &
cap=$!
ip monitor address dev rb0 >"$work/addr.mon" 2>&1 &
mon=$!
# tshark is slow to start under TCG: adverts before "Capturing on" are lost.
for _ in $(seq 300); do grep -q 'Capturing on' "$work/tshark.log" && break; sleep 0.1; done
sleep 3
reload_ms=()
for r in 1 2 3; do
  t0="$(date +%s%N)"
  kill -HUP "$pid"
  end=$((SECONDS + 300))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(grep -c 'reloaded ' "$work/lbd.log" || true)" -ge "$r" ] && break
    sleep 0.05
  done
  t1="$(date +%s%N)"
  [ "$(grep -c 'reloaded ' "$work/lbd.log" || true)" -ge "$r" ] || { echo "reload $r did not finish" >&2; tail -n 20 "$work/lbd.log" >&2; exit 1; }
  reload_ms+=("$(((t1 - t0) / 1000000))")
  sleep 2
done
sleep 2
kill -INT "$cap" 2>/dev/null || true
kill "$mon" 2>/dev/null || true
wait "$cap" "$mon" 2>/dev/null || true
read -r d1 o1 < <(counters)
addr_changes="$(grep -c . "$work/addr.mon" || true)"
transitions="$(grep -c ' -> ' "$work/lbd.log" || true)"
gap="$({ tshark -r "$work/vrrp.pcap" -T fields -e vrrp.virt_rtr_id -e frame.time_epoch 2>/dev/null || true; } |
  awk '{ if ($1 in p) { d = $2 - p[$1]; if (d > m) m = d } p[$1] = $2; c++ } END { printf "%.1f %d", m * 1000, c }')"
echo "Reload benchmark: $ni VRRP instances, $ns IPVS services, unchanged file reloaded 3 times (TCG VM)"
echo "| figure | value |"
echo "| --- | --- |"
echo "| cold start to full IPVS table (s) | $(awk -v a="$t_start" -v b="$t_full" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') |"
echo "| SIGHUP -> reloaded (ms), 3 reloads | ${reload_ms[*]} |"
echo "| IPVS write operations by the reloads (want 0) | $((o1 - o0)) |"
echo "| IPVS table reads (dumps) during the window | $((d1 - d0)) |"
echo "| address changes seen by ip monitor (want 0) | $addr_changes |"
echo "| instance transitions in the whole run | $transitions (startup: $ni) |"
echo "| largest advert gap of any instance (interval 1000 ms) | ${gap% *} ms (${gap#* } adverts) |"
echo "lbd's own account of the reloads:"
grep -E 'reload|IPVS [RD]' "$work/lbd.log" | tail -n 14 | cut -c1-300 
if [ -S "$sock" ] && command -v curl >/dev/null; then
  scrape() { curl -s --max-time 20 --unix-socket "$sock" -o "$work/out" -w '%{time_total} %{size_download}\n' "http://lbd$1"; }
  read -r mt msz < <(scrape /metrics)
  read -r st ssz < <(scrape /status)
  r0="$(rss)"
  for _ in $(seq 50); do scrape /metrics >/dev/null; scrape /status >/dev/null; scrape '/events?since=0' >/dev/null; scrape /metrics >/dev/null; done
  r1="$(rss)"
  echo "| /metrics scrape (s, bytes) | $mt, $msz |"
  echo "| /status (s, bytes) | $st, $ssz |"
  echo "| RSS before / after 200 API requests (KiB) | $r0 / $r1 |"
else
  echo "| API | not served by this binary |"
fi
