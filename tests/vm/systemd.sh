#!/usr/bin/env bash
# packaging/systemd/lbd.service under a real systemd (PID 1): run inside the
# VM by tests/vm/run --systemd. Installs the unit as an operator would, then:
# systemd-analyze verify clean; a refused configuration fails the start
# (ExecStartPre=lbd --check) and one that loads with repairs does not; READY
# with lbd's STATUS in `systemctl status`; the capabilities the unit grants;
# reload applied (and a refused one fails `systemctl reload`, lbd keeps
# running); on SIGHUP lbd's RELOADING=1/READY=1 move systemd to reload and
# back; the watchdog kills and restarts a stalled lbd; stop is clean.
# Any failed step exits non-zero.
source "$(dirname "$0")/service_lib.sh"

[ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm), not systemd: use tests/vm/run --systemd"
UNIT=/etc/systemd/system/lbd.service
show() { systemctl show -P "$1" lbd; }
journal() { journalctl -u lbd --no-pager -o cat "$@"; }
dump() {
  echo "--- systemctl status lbd" >&2
  systemctl status lbd --no-pager -l >&2 || true
  echo "--- journal of lbd" >&2
  journal -n 60 >&2 || true
}
trap 'rc=$?; [ "$rc" = 0 ] || dump; systemctl stop lbd 2>/dev/null || true' EXIT

step "install"
install_binaries
install -m 0644 "$ROOT/packaging/systemd/lbd.service" "$UNIT"
make_link
systemctl daemon-reload
echo "systemd $(systemctl --version | awk 'NR==1 {print $2}')"

step "systemd-analyze verify"
out="$(systemd-analyze verify "$UNIT" 2>&1)" || fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
echo "clean"

step "a refused configuration fails the start (ExecStartPre=lbd --check)"
mkdir -p /etc/keepalived
printf 'vrrp_instance VI_1 {\n  interface\n}\n' >/etc/keepalived/keepalived.conf
if systemctl start lbd; then fail "systemctl start succeeded with a refused configuration"; fi
# Restart=on-failure retries it (RestartSec=2s) until StartLimitBurst.
wait_until 30 "the unit failed for good (is: $(show ActiveState), $(show Result))" \
  bash -c '[ "$(systemctl show -P ActiveState lbd)" = failed ]'
[ "$(show Result)" = exit-code ] || fail "Result $(show Result), want exit-code"
journal | contains 'Start request repeated too quickly' || fail "the start limit did not stop the retries"
journal | contains 'keepalived.conf:2: error: interface' || fail "the journal lacks --check's finding"
journal | contains 'lbd running' && fail "lbd itself was started"
systemctl reset-failed lbd
echo "refused, with the finding in the journal"

step "start: a configuration that loads only with repairs (--check exits 5)"
write_conf "10.77.0.100" "  unknown_keyword_for_the_test 1"
set +e; /usr/sbin/lbd --check >/dev/null; rc=$?; set -e
[ "$rc" = 5 ] || fail "lbd --check exited $rc on the repaired file, want 5"
t0=$SECONDS
systemctl start lbd || fail "systemctl start lbd failed"
echo "started in $((SECONDS - t0)) s (Type=notify: returns at READY=1)"
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "state $(show ActiveState)/$(show SubState)"
wait_until 20 "STATUS shows VI_1 MASTER (is: $(show StatusText))" \
  bash -c '[[ "$(systemctl show -P StatusText lbd)" == *"VI_1 MASTER"* ]]'
echo "StatusText: $(show StatusText)"
systemctl status lbd --no-pager | tee /dev/stderr | contains 'Status: "VI_1 MASTER' ||
  fail "systemctl status does not show lbd's STATUS line"
wait_until 10 "VIP 10.77.0.100 on lbd0" has_vip 10.77.0.100
ipvsadm -Ln | contains '^TCP  10\.77\.0\.100:80 wrr' || fail "no IPVS service (ip_vs autoload under ProtectKernelModules?): $(ipvsadm -Ln)"
/usr/sbin/lbctl status | contains 'VI_1' || fail "lbctl status (socket /run/lbd/lbd.sock) does not show VI_1"

step "what the unit grants"
pid="$(show MainPID)"
read -r bnd eff nnp < <(caps_of "$pid")
echo "CapBnd $bnd CapEff $eff NoNewPrivs $nnp"
[ "$bnd" = "$LBD_CAPS" ] && [ "$eff" = "$LBD_CAPS" ] || fail "capabilities $bnd/$eff, want $LBD_CAPS"
[ "$nnp" = 1 ] || fail "NoNewPrivs is $nnp"
[ "$(stat -c %a /run/lbd)" = 750 ] || fail "/run/lbd mode $(stat -c %a /run/lbd)"
nsenter -t "$pid" -m touch /etc/lbd-write-test 2>/dev/null && fail "lbd can write /etc (ProtectSystem=strict)"
[ -z "$(nsenter -t "$pid" -m ls -A /root 2>/dev/null)" ] || fail "lbd sees into /root (ProtectHome)"
echo "ok"

step "reload: applied"
write_conf "10.77.0.100 10.77.0.101" ""
systemctl reload lbd || fail "systemctl reload lbd failed"
has_vip 10.77.0.101 || wait_until 5 "VIP 10.77.0.101 after the reload" has_vip 10.77.0.101
[ "$(show MainPID)" = "$pid" ] || fail "the reload restarted lbd"
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "after reload: $(show ActiveState)/$(show SubState)"
journal | contains 'Reloaded' || fail "systemd did not log the reload"
/usr/sbin/lbctl events | contains 'reload .*outcome=applied' || fail "no applied reload in lbd's event log"

step "reload: refused"
printf 'vrrp_instance VI_1 {\n  interface\n}\n' >/etc/keepalived/keepalived.conf
if systemctl reload lbd; then fail "systemctl reload succeeded with a refused configuration"; fi
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "after a refused reload: $(show ActiveState)/$(show SubState)"
[ "$(show MainPID)" = "$pid" ] || fail "a refused reload restarted lbd"
has_vip 10.77.0.101 || fail "a refused reload changed the VIPs"
write_conf "10.77.0.100 10.77.0.101" ""
echo "refused; lbd runs on"

step "SIGHUP: lbd's own RELOADING=1 and READY=1 move systemd to reload and back"
# Without a reload job only PID 1's debug log shows the notifications.
systemd-analyze log-level debug
since="$(date '+%Y-%m-%d %H:%M:%S')"
kill -HUP "$pid"
wait_until 15 "systemd back to running after lbd's READY=1" bash -c \
  "journalctl -u lbd --no-pager -o cat --since '$since' | grep -q 'Changed reload -> running'"
systemd-analyze log-level info
journal --since "$since" | contains 'Got notification message from PID .*RELOADING=1' ||
  fail "systemd did not get lbd's RELOADING=1"
journal --since "$since" | contains 'Changed running -> reload' || fail "systemd did not enter reload"
[ "$(show MainPID)" = "$pid" ] || fail "SIGHUP restarted lbd"
echo "running -> reload -> running on lbd's notifications"

step "watchdog: a stalled event loop is killed and lbd restarted"
mkdir -p /etc/systemd/system/lbd.service.d
cat >/etc/systemd/system/lbd.service.d/watchdog-test.conf <<'CONF'
[Service]
WatchdogSec=4s
Environment=LBD_TEST_STALL_FILE=/run/lbd-test-stall
CONF
systemctl daemon-reload
systemctl restart lbd
pid="$(show MainPID)"
wait_until 20 "VI_1 MASTER after the restart" bash -c '[[ "$(systemctl show -P StatusText lbd)" == *"VI_1 MASTER"* ]]'
sleep 6 # longer than WatchdogSec: the pings must keep it alive meanwhile
[ "$(show MainPID)" = "$pid" ] && [ "$(show NRestarts)" = 0 ] || fail "killed without a stall (NRestarts $(show NRestarts))"
touch /run/lbd-test-stall
t0=$SECONDS
wait_until 20 "the watchdog to fire (Result $(show Result))" bash -c '[ "$(systemctl show -P Result lbd)" = watchdog ]'
echo "watchdog fired $((SECONDS - t0)) s after the stall"
rm -f /run/lbd-test-stall
wait_until 30 "lbd restarted and running" bash -c \
  '[ "$(systemctl show -P NRestarts lbd)" = 1 ] && [ "$(systemctl show -P SubState lbd)" = running ]'
[ "$(show MainPID)" != "$pid" ] || fail "same MainPID after the restart"
journal | contains 'Watchdog timeout' || fail "no watchdog timeout in the journal"
wait_until 20 "VI_1 MASTER after the watchdog restart" bash -c '[[ "$(systemctl show -P StatusText lbd)" == *"VI_1 MASTER"* ]]'
rm /etc/systemd/system/lbd.service.d/watchdog-test.conf
systemctl daemon-reload
echo "restarted: $(show StatusText)"

step "stop"
systemctl stop lbd || fail "systemctl stop lbd failed"
[ "$(show ActiveState)" = inactive ] || fail "after stop: $(show ActiveState) (Result $(show Result))"
[ "$(show Result)" = success ] || fail "stop result $(show Result)"
[ "$(show ExecMainStatus)" = 0 ] || fail "lbd exited $(show ExecMainStatus)"
has_vip 10.77.0.100 && fail "VIP 10.77.0.100 left behind"
has_vip 10.77.0.101 && fail "VIP 10.77.0.101 left behind"
[ ! -e /run/lbd ] || fail "/run/lbd left behind"
journal | contains 'SIGTERM: stopping' || fail "lbd did not log its stop"
echo "stopped cleanly"
echo "systemd: ok"
