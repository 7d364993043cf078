# Shared by tests/vm/systemd.sh and tests/vm/openrc.sh: sourced, not run.
# Both drive lbd through a real service manager inside the VM booted by
# tests/vm/run --systemd, whose /etc, /usr and /var are throwaway overlays.
# shellcheck shell=bash
set -euo pipefail

[ "${LBD_IN_VM:-}" = 1 ] || { echo "$(basename "$0") runs inside the VM only: use tests/vm/run --systemd" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LBD="${LBD_BIN:-$ROOT/target/debug/lbd}"
LBCTL="$(dirname "$LBD")/lbctl"
[ -x "$LBD" ] && [ -x "$LBCTL" ] || { echo "no built $LBD / $LBCTL: cargo build --workspace --bins" >&2; exit 2; }

# grep -q in a pipeline under pipefail: the writer may die of SIGPIPE.
contains() { grep -e "$1" >/dev/null; }
step() { printf '\n--- %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_until() {
  local secs="$1" what="$2" end
  shift 2
  end=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || fail "after ${secs}s: $what"
    sleep 0.2
  done
}

# The binaries where the service files expect them (/usr/sbin), without
# copying ~200 MB of debug build into the overlay.
install_binaries() {
  local b
  for b in lbd lbctl; do
    mountpoint -q "/usr/sbin/$b" && continue # a test before this one did it
    : >"/usr/sbin/$b"
    mount --bind "$(dirname "$LBD")/$b" "/usr/sbin/$b"
  done
  /usr/sbin/lbd --version >/dev/null || fail "/usr/sbin/lbd does not run"
}

# A veth pair (the peer end only keeps the link up): lbd alone on it is master.
make_link() {
  ip link del lbd0 2>/dev/null || true
  ip link add lbd0 type veth peer name lbd0p
  ip addr add 10.77.0.1/24 dev lbd0
  ip link set lbd0p up
  ip link set lbd0 up
}

has_vip() { ip -4 -o addr show dev lbd0 | grep -q " $1/"; }

# keepalived.conf with one instance and one IPVS virtual server (ip_vs is
# autoloaded by the kernel on lbd's first request, as in production).
# $1: VIPs (space separated), $2: extra global_defs lines.
write_conf() {
  local vips="" v
  for v in $1; do vips+="    $v/24"$'\n'; done
  mkdir -p /etc/keepalived
  cat >/etc/keepalived/keepalived.conf <<CONF
global_defs {
  router_id lbd_vm
$2
}
vrrp_instance VI_1 {
  state BACKUP
  interface lbd0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
$vips  }
}
virtual_server 10.77.0.100 80 {
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  real_server 10.77.0.10 80 {
    weight 1
  }
}
CONF
}

# "CapBnd CapEff NoNewPrivs" of a process.
caps_of() {
  awk '/^CapBnd:/ {b=$2} /^CapEff:/ {e=$2} /^NoNewPrivs:/ {n=$2} END {print b, e, n}' "/proc/$1/status"
}
# CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7, CAP_NET_ADMIN 12, CAP_NET_RAW 13.
LBD_CAPS=00000000000030e0
