#!/usr/bin/env bash
# The README demo (scripts/lab), run inside the VM by tests/vm/run: the
# load balancer example tests/examples/lvs_demo.rs, built on the host.
set -euo pipefail
[ "${LBD_IN_VM:-}" = 1 ] || { echo "demo.sh runs inside the VM only: use scripts/lab" >&2; exit 2; }
root="$(cd "$(dirname "$0")/../.." && pwd)"
modprobe ip_vs
modprobe ip_vs_rr
exec "$root/target/debug/examples/lvs_demo"
