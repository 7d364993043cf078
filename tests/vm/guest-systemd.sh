#!/usr/bin/env bash
# Run by systemd (PID 1) as kernel-command-line.service when tests/vm/run
# --systemd boots the VM: virtme-ng-init, which sets up the plain boot, does
# not run then, so this does its part before handing over to guest.sh:
# the results directory (9p, writable), tmpfs overlays on /etc, /usr and
# /var (a test installs units and packages there; the host's files stay
# untouched), a private /tmp. The kernel command line carries lbd_vm_res and
# lbd_vm_test_timeout. The exit status goes to vng through virtme's ret port;
# systemd powers the VM off when this exits.
set -uo pipefail

karg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n1; }
res="$(karg lbd_vm_res)"
[ -n "$res" ] || { echo "guest-systemd: no lbd_vm_res= on the kernel command line" >&2; exit 2; }

# virtme passes the one --rwdir as initmount0, its guest path without the leading /.
mount -t 9p -o version=9p2000.L,trans=virtio,access=any,msize=524288 virtme.initmount0 "$res" ||
  { echo "guest-systemd: mounting $res failed" >&2; exit 2; }

mkdir -p /run/vm-overlays && mount -t tmpfs -o mode=0755 vm-overlays /run/vm-overlays ||
  { echo "guest-systemd: tmpfs for the overlays failed" >&2; exit 2; }
for d in /etc /usr /var; do
  n="${d#/}"
  mkdir -p "/run/vm-overlays/$n/upper" "/run/vm-overlays/$n/work"
  mount -t overlay -o "xino=off,lowerdir=$d,upperdir=/run/vm-overlays/$n/upper,workdir=/run/vm-overlays/$n/work" \
    "vm-$n" "$d" || { echo "guest-systemd: overlay on $d failed" >&2; exit 2; }
done
mount -t tmpfs -o mode=1777 vm-tmp /tmp || { echo "guest-systemd: tmpfs on /tmp failed" >&2; exit 2; }

# virtme's virtio ports by name (devtmpfs has the nodes; udev, which makes
# the /dev/virtio-ports links, may not run).
port() {
  local d
  for d in /sys/class/virtio-ports/*; do
    [ "$(cat "$d/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${d##*/}"; return 0; }
  done
  return 1
}
# The live view: vng copies this port to its stdout (the serial console is
# not shown when vng runs a command).
out="$(port virtme.stdout)" || out=/dev/console
LBD_VM_TEST_TIMEOUT="$(karg lbd_vm_test_timeout)" \
  bash "$(dirname "$(realpath "$0")")/guest.sh" "$res" >"$out" 2>&1
rc=$?
ret="$(port virtme.ret)" && echo "$rc" >"$ret"
exit "$rc"
