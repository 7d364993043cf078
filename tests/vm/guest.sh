#!/usr/bin/env bash
# usage: guest.sh RESULTS_DIR   (run by tests/vm/run inside the VM, not by hand)
#
# Runs every RESULTS_DIR/tests/*.sh in name order and leaves, per test,
# NAME.log (stdout+stderr) and NAME.rc (exit status) next to them. RESULTS_DIR
# is the one directory the VM may write on the host (virtme-ng --rwdir), so
# the host reads the verdicts from files, not from the serial console.
set -uo pipefail

res="${1:?usage: guest.sh RESULTS_DIR}"
per_test="${LBD_VM_TEST_TIMEOUT:-600}"
export LBD_IN_VM=1 # tests that change the kernel's state check it

# Proof of boot for the host: without this file the run is a failure.
{ uname -r; date -u +%FT%TZ; } >"$res/booted"

failed=0
for t in "$res"/tests/*.sh; do
  [ -e "$t" ] || break
  name="$(basename "$t" .sh)"
  echo "vm: running $name"
  start=$SECONDS
  # stdin closed: a test must never wait for input on the console.
  # Also on the console, for a live view; the log file is what counts.
  timeout --kill-after=10 "$per_test" bash "$t" </dev/null 2>&1 | tee "$res/$name.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && echo "vm: $name: killed after ${per_test}s" >>"$res/$name.log"
  # Written last and renamed, so a half-written status is never read.
  echo "$rc $((SECONDS - start))" >"$res/$name.rc.tmp" && mv "$res/$name.rc.tmp" "$res/$name.rc"
  echo "vm: $name exit $rc ($((SECONDS - start)) s)"
  [ "$rc" = 0 ] || failed=1
done

sync
touch "$res/done"
exit "$failed"
