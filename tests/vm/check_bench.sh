#!/usr/bin/env bash
# usage: check_bench.sh LBD_BINARY [N] [SECONDS]   (inside the VM: tests/vm/run)
#
# Health-check benchmark of scripts/bench --part checks: N HTTP real servers
# (one lightweight responder answering on N local addresses, 10.200.0.0/16
# routed to lo) behind one virtual server, each checked by HTTP_GET every
# second, for the same keepalived.conf run by keepalived and then by lbd.
# Over a SECONDS window after warm-up: CPU of keepalived's checker process
# and of lbd (total and user space), the checks the responder answered, CPU
# per check (the fair ratio when one side cannot keep up with the
# schedule), their RSS, and the largest gap between the VRRP adverts the
# node sends (advert_int 1 s) while checking. A third run is lbd with the
# same configuration converted to TOML and the http_get option `keepalive`
# (the check reuses its connection; keepalived has no equivalent). Timing is
# what is measured here, so the window is a plain sleep.
set -euo pipefail
[ "${LBD_IN_VM:-}" = 1 ] || { echo "check_bench.sh runs inside the VM only" >&2; exit 2; }

lbd="${1:?usage: check_bench.sh LBD_BINARY [N] [SECONDS]}"
n="${2:-1000}"
window="${3:-30}"
work="$(mktemp -d)"
hz="$(getconf CLK_TCK)"

cleanup() {
  pkill -9 -f "http_responder $work/count" 2>/dev/null || true
  ipvsadm -C 2>/dev/null || true
}
trap cleanup EXIT

modprobe ip_vs
ip link add vb0 type veth peer name vb1
ip addr add 10.77.0.1/24 dev vb0
ip link set vb0 up
ip link set vb1 up
ip route add local 10.200.0.0/16 dev lo

# The responder (tests/examples/http_responder.rs) counts the requests it
# answered: the checks each implementation really made in the window.
"${RESPONDER:?set RESPONDER to the http_responder binary}" "$work/count" >"$work/responder.log" 2>&1 &
for _ in $(seq 100); do grep -q listening "$work/responder.log" && break; sleep 0.1; done

conf="$work/keepalived.conf"
{
  printf 'global_defs {\n  router_id bench\n}\n'
  printf 'vrrp_instance VI_B {\n  interface vb0\n  virtual_router_id 99\n  priority 255\n  advert_int 1\n  virtual_ipaddress {\n    10.77.0.100/24\n  }\n}\n'
  printf 'virtual_server 10.77.0.100 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n'
  for i in $(seq 0 $((n - 1))); do
    printf '  real_server 10.200.%d.%d 8080 {\n    HTTP_GET {\n      url {\n        path /\n        status_code 200\n      }\n      connect_timeout 2\n    }\n  }\n' $((i / 250)) $((i % 250 + 1))
  done
  printf '}\n'
} >"$conf"

ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# run KIND: prints "cpu_percent user_percent checks_per_s us_per_check rss_mib max_gap_ms adverts"
run() {
  local kind="$1" pid cpu0 cpu1 cap n0 n1
  ipvsadm -C
  if [ "$kind" = keepalived ]; then
    keepalived -n -l -D -f "$conf" -p "$work/ka.pid" -c "$work/ka-chk.pid" -r "$work/ka-vrrp.pid" >"$work/ka.log" 2>&1 &
    for _ in $(seq 300); do [ -s "$work/ka-chk.pid" ] && break; sleep 0.1; done
    pid="$(cat "$work/ka-chk.pid")"
  elif [ "$kind" = lbd ]; then
    LBD_PLUGIN_DIR="$PLUGINS" "$lbd" -f "$conf" --log-level warn >"$work/lbd.log" 2>&1 &
    pid=$!
  else
    LBD_PLUGIN_DIR="$PLUGINS" "$lbd" -f "$work/keep.toml" --log-level warn >"$work/lbd-keep.log" 2>&1 &
    pid=$!
  fi
  # Warm-up: every server added and checked a few times.
  for _ in $(seq 600); do
    [ "$(ipvsadm -Ln | grep -c -- '-> 10.200.')" -ge "$n" ] && break
    sleep 0.1
  done
  sleep 5
  tshark -n -i vb1 -f "ip proto 112" -a "duration:$window" -w "$work/$kind.pcap" >/dev/null 2>&1 &
  cap=$!
  cpu0="$(ticks "$pid")"
  n0="$(cat "$work/count")"
  sleep "$window"
  cpu1="$(ticks "$pid")"
  n1="$(cat "$work/count")"
  wait "$cap" || true
  local rss gap
  rss="$(rss_kib "$pid")"
  gap="$(tshark -r "$work/$kind.pcap" -T fields -e frame.time_epoch 2>/dev/null |
    awk 'NR > 1 { d = $1 - p; if (d > m) m = d } { p = $1; c++ } END { printf "%.1f %d", m * 1000, c }')"
  if [ "$kind" = keepalived ]; then
    kill "$(cat "$work/ka.pid")"
  else
    kill "$pid"
  fi
  wait 2>/dev/null || true
  awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" -v w="$window" -v r="$rss" -v g="$gap" -v n0="$n0" -v n1="$n1" '
    BEGIN {
      split(a, x, " "); split(b, y, " ")
      u = (y[1] - x[1]) / hz; t = u + (y[2] - x[2]) / hz; c = n1 - n0
      printf "%.1f %.1f %.0f %.0f %.1f %s\n", t / w * 100, u / w * 100, c / w, (c > 0 ? t / c * 1e6 : 0), r / 1024, g
    }'
}

PLUGINS="${LBD_PLUGIN_DIR:?set LBD_PLUGIN_DIR to the plugins directory}"
# keepalive = true into each http_get check's options table: in the table's
# own header when the TOML has one, else in one opened before its first
# sub-table (options.urls) or before the next section.
"$lbd" -f "$conf" --convert | awk '
  function add() { print "[virtual_server.real_server.checks.options]"; print "keepalive = true"; print ""; pending = 0 }
  /^plugin = "http_get"$/ { pending = 1; print; next }
  pending && $0 == "[virtual_server.real_server.checks.options]" { print; print "keepalive = true"; pending = 0; next }
  pending && /^\[/ { add() }
  { print }
  END { if (pending) add() }' >"$work/keep.toml"
grep -q '^keepalive = true$' "$work/keep.toml" || { echo "no http_get options in the converted configuration" >&2; exit 1; }
read -r ka_cpu ka_user ka_rate ka_per ka_rss ka_gap ka_n < <(run keepalived)
read -r lb_cpu lb_user lb_rate lb_per lb_rss lb_gap lb_n < <(run lbd)
read -r lk_cpu lk_user lk_rate lk_per lk_rss lk_gap lk_n < <(run lbd-keepalive)
row() {
  awk -v l="$1" -v a="$2" -v b="$3" -v c="$4" \
    'BEGIN { printf "| %s | %s | %s | %.2f | %s | %.2f |\n", l, a, b, (a > 0 ? b / a : 0), c, (a > 0 ? c / a : 0) }'
}
echo "Health-check benchmark: $n HTTP real servers, HTTP_GET every 1 s, ${window} s window (TCG VM)"
echo "| | keepalived (checker process) | lbd | lbd/keepalived | lbd, keepalive = true | ratio |"
echo "| --- | --- | --- | --- | --- | --- |"
row "checks answered per second" "$ka_rate" "$lb_rate" "$lk_rate"
row "CPU % of one core" "$ka_cpu" "$lb_cpu" "$lk_cpu"
row "of which user space %" "$ka_user" "$lb_user" "$lk_user"
row "CPU us per check" "$ka_per" "$lb_per" "$lk_per"
row "RSS MiB" "$ka_rss" "$lb_rss" "$lk_rss"
echo "| largest advert gap (interval 1000 ms) | $ka_gap ms ($ka_n adverts) | $lb_gap ms ($lb_n adverts) | - | $lk_gap ms ($lk_n adverts) | - |"
