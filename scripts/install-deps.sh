#!/usr/bin/env bash
# Installs what Tide's whole test suite needs on a fresh Debian 12 machine (run as root).
# Idempotent. The tests start every daemon they need themselves (private libvirtds in
# namespaces, BMC simulators), so nothing is started here.
set -euo pipefail
# apt-get needs root: re-run under sudo when it exists (a fresh Debian container runs as root
# and has no sudo).
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -- bash "$0" "$@"; fi
  echo "install-deps: needs root for apt-get (run it as root; sudo is not installed)" >&2
  exit 1
fi
pkgs=(
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients   # libvirtd + virsh (fallback driver, cross-checks)
  qemu-system-x86 busybox-static                                # lab guests (TCG when KVM is unusable)
  iproute2 util-linux xz-utils procps psmisc                    # namespaces, veth, unshare
  openipmi ipmitool wakeonlan etherwake                         # power drivers against a real BMC simulator
  openssh-client openssh-server                                 # qemu+ssh:// transport tests (loopback sshd)
  openssl netcat-openbsd                                        # libvirt RPC tests: TLS certificates, ssh proxy=netcat (nc -U)
  python3 make g++                                              # better-sqlite3 native build
  chromium                                                      # dashboard e2e (playwright-core drives /usr/bin/chromium)
  postgresql                                                    # PostgreSQL store + leader election (tests start their own cluster on loopback)
  prometheus prometheus-node-exporter prometheus-libvirt-exporter  # Prometheus as the metrics source (tests start them on loopback)
)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The lab fetches its guest kernel with `apt-get download`: that needs package lists, which a
# fresh container may not have even when every package above is installed.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then apt-get update -q; fi
echo "install-deps: ok (${#missing[@]} packages installed)"
