#!/usr/bin/env bash
# packaging/openrc/lbd driven by Debian's OpenRC (openrc-run, rc-service,
# supervise-daemon), run inside the VM by tests/vm/run --systemd. OpenRC is
# not PID 1 here: openrc-run only needs its state directory /run/openrc,
# made by hand as in a container. Its .debs (fetched on the host by `openrc.sh --fetch`
# into target/openrc-debs, or OPENRC_DEBS) are unpacked into the VM's throwaway
# overlays; the host never gets them (openrc conflicts with systemd-sysv
# setups). Steps: start (checkconfig, `need net`, supervise-daemon with the
# script's capabilities), status, reload applied and refused, respawn after
# a crash, the health check restarting a stalled lbd, stop. Any failed step exits non-zero.

# On the host, before the boot (the VM has no network): fetch the .debs.
if [ "${1:-}" = --fetch ]; then
  set -euo pipefail
  dir="$(cd "$(dirname "$0")/../.." && pwd)/target/openrc-debs"
  ls "$dir"/openrc_*.deb >/dev/null 2>&1 && exit 0
  mkdir -p "$dir.tmp"
  # Only downloaded, never installed here; retried after refreshing apt's lists.
  (cd "$dir.tmp" && { apt-get download openrc librc1 libeinfo1 insserv 2>/dev/null ||
    { apt-get update -qq && apt-get download openrc librc1 libeinfo1 insserv; }; })
  mv "$dir.tmp" "$dir"
  exit 0
fi

source "$(dirname "$0")/service_lib.sh"

debs="${OPENRC_DEBS:-$ROOT/target/openrc-debs}"
ls "$debs"/openrc_*.deb >/dev/null 2>&1 || fail "no openrc .deb in $debs (tests/vm/run fetches them)"
svc() { rc-service lbd "$@"; }
# The pid supervise-daemon started (setpriv execs lbd in it).
lbd_pid() { cat /run/openrc/options/lbd/child_pid 2>/dev/null || true; }
trap 'rc=$?; if [ "$rc" != 0 ]; then echo "--- /var/log/lbd.log" >&2; tail -n 40 /var/log/lbd.log >&2 || true; fi; rc-service lbd stop >/dev/null 2>&1 || true' EXIT

step "install Debian's openrc into the overlay"
stage="$(mktemp -d)"
for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$stage"; done
# Top directory by top directory: / itself is read-only, and /lib, /bin and
# /sbin are symlinks into /usr here, which the trailing slash follows.
for top in "$stage"/*; do cp -a "$top/." "/${top##*/}/"; done
rm -rf "$stage"
echo "$(openrc --version)"
install_binaries
install -m 0755 "$ROOT/packaging/openrc/lbd" /etc/init.d/lbd
# What a distribution's network service does for `need net`; nothing to start here.
cat >/etc/init.d/net-stub <<'SH'
#!/sbin/openrc-run
depend() { provide net; }
start() { return 0; }
SH
chmod 0755 /etc/init.d/net-stub
make_link
# OpenRC's state directory as its boot leaves it (librc does not create the
# subdirectories; a missing one reads as "already starting"). OpenRC itself
# does not run.
mkdir -p /run/openrc/{daemons,exclusive,failed,hotplugged,inactive,options,scheduled,started,starting,stopping,tmp,wasinactive}
touch /run/openrc/softlevel

step "a refused configuration: start fails with the finding"
mkdir -p /etc/keepalived
printf 'vrrp_instance VI_1 {\n  interface\n}\n' >/etc/keepalived/keepalived.conf
if out="$(svc start 2>&1)"; then fail "start succeeded with a refused configuration: $out"; fi
echo "$out"
contains 'keepalived.conf:2: error: interface' <<<"$out" || fail "checkconfig did not show the finding"
pgrep -x lbd >/dev/null && fail "lbd runs"
svc zap >/dev/null

step "start"
write_conf "10.77.0.100" "  unknown_keyword_for_the_test 1"
svc start || fail "rc-service lbd start failed"
rc-service net-stub status >/dev/null || fail "need net did not start the net provider"
svc status || fail "rc-service lbd status: $?"
wait_until 20 "VIP 10.77.0.100 on lbd0" has_vip 10.77.0.100
pid="$(lbd_pid)"
[ -n "$pid" ] || fail "no lbd process"
# comm is cut at 15 characters: supervise-daemo
[[ "$(ps -o comm= -p "$(ps -o ppid= -p "$pid" | tr -d ' ')")" == supervise-daem* ]] || fail "lbd is not supervise-daemon's child"
[ "$(cat "/proc/$pid/comm")" = lbd ] || fail "pid $pid is $(cat "/proc/$pid/comm"), not lbd"
/usr/sbin/lbctl status | contains 'VI_1 .*MASTER' || fail "lbctl status: not master"
read -r bnd eff nnp < <(caps_of "$pid")
echo "CapBnd $bnd CapEff $eff NoNewPrivs $nnp"
[ "$bnd" = "$LBD_CAPS" ] && [ "$eff" = "$LBD_CAPS" ] || fail "capabilities $bnd/$eff, want $LBD_CAPS"
[ "$nnp" = 1 ] || fail "NoNewPrivs is $nnp"
wait_until 10 "lbd's log in /var/log/lbd.log" bash -c 'grep -q "lbd running" /var/log/lbd.log'

step "reload: applied"
write_conf "10.77.0.100 10.77.0.101" ""
svc reload || fail "rc-service lbd reload failed"
has_vip 10.77.0.101 || wait_until 5 "VIP 10.77.0.101 after the reload" has_vip 10.77.0.101
[ "$(lbd_pid)" = "$pid" ] || fail "the reload restarted lbd"
/usr/sbin/lbctl events | contains 'reload .*outcome=applied' || fail "no applied reload in lbd's event log"

step "reload: refused"
printf 'vrrp_instance VI_1 {\n  interface\n}\n' >/etc/keepalived/keepalived.conf
if svc reload; then fail "reload succeeded with a refused configuration"; fi
svc status >/dev/null || fail "lbd is not started after a refused reload"
[ "$(lbd_pid)" = "$pid" ] || fail "a refused reload restarted lbd"
has_vip 10.77.0.101 || fail "a refused reload changed the VIPs"
write_conf "10.77.0.100 10.77.0.101" ""

step "respawn after a crash"
kill -KILL "$pid"
wait_until 20 "a new lbd" bash -c "p=\$(cat /run/openrc/options/lbd/child_pid 2>/dev/null); [ -n \"\$p\" ] && [ \"\$p\" != $pid ] && [ \"\$(cat /proc/\$p/comm)\" = lbd ]"
svc status || fail "status after the respawn: $?"
wait_until 20 "VI_1 master again" bash -c '/usr/sbin/lbctl status 2>/dev/null | grep "VI_1" | grep -q MASTER'
echo "respawned as $(lbd_pid)"

step "health check: a stalled event loop is restarted"
# Short periods for the test, and the stall hook (exported to lbd).
mkdir -p /etc/conf.d
cat >/etc/conf.d/lbd <<'CONF'
healthcheck_delay=2
healthcheck_timer=3
retry="TERM/5/KILL/5"
export LBD_TEST_STALL_FILE=/run/lbd-test-stall
CONF
svc restart || fail "rc-service lbd restart failed"
pid="$(lbd_pid)"
wait_until 20 "VI_1 master after the restart" bash -c '/usr/sbin/lbctl status 2>/dev/null | grep "VI_1" | grep -q MASTER'
sleep 8 # several health checks: a healthy lbd must be left alone
[ "$(lbd_pid)" = "$pid" ] || fail "a healthy lbd was restarted"
touch /run/lbd-test-stall
t0=$SECONDS
wait_until 60 "the health check to restart lbd" bash -c "p=\$(cat /run/openrc/options/lbd/child_pid 2>/dev/null); [ -n \"\$p\" ] && [ \"\$p\" != $pid ]"
echo "restarted $((SECONDS - t0)) s after the stall (lbctl's 10 s timeout, then TERM, then KILL)"
rm -f /run/lbd-test-stall
wait_until 20 "VI_1 master after the health-check restart" bash -c '/usr/sbin/lbctl status 2>/dev/null | grep "VI_1" | grep -q MASTER'
svc status >/dev/null || fail "status after the health-check restart"

step "stop"
svc stop || fail "rc-service lbd stop failed"
if svc status >/dev/null 2>&1; then fail "status says started after stop"; fi
pid="$(lbd_pid)"
[ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null || fail "lbd still runs"
pgrep -x lbd >/dev/null && fail "an lbd process is left"
has_vip 10.77.0.100 && fail "VIP 10.77.0.100 left behind"
has_vip 10.77.0.101 && fail "VIP 10.77.0.101 left behind"
grep -q 'SIGTERM: stopping' /var/log/lbd.log || fail "lbd did not log its stop"
echo "openrc: ok"
