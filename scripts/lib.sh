# Shared helpers for scripts/*: sourced, not run.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

die() { echo "error: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*"; }

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (network namespaces, raw sockets)"; }

# Debian packages the lab and tests use; installed only when missing.
# busybox-static (not busybox: the two conflict, and the VM tier wants the static one)
# gives /bin/busybox, the container recipe's `busybox killall`.
# python3-prometheus-client: the metrics tests parse lbd's scrape with it.
APT_PKGS=(keepalived tshark iproute2 iputils-ping tcpdump python3 curl nftables procps haproxy psmisc dnsmasq-base busybox-static python3-aiosmtpd time systemd python3-prometheus-client)

install_deps() {
  local missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Neither may run as a host service: the tests start their own.
  local svc
  for svc in keepalived haproxy; do
    if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    fi
  done
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
}

build() {
  say "building"
  (cd "$ROOT" && cargo build --workspace --bins "$@")
}
