#!/usr/bin/env bash
# Kernel matrix: boot Debian's kernels (6.12 with the bpf LSM, 6.1), x86_64 and
# arm64, under qemu (TCG: no KVM here; qemu-system-aarch64 emulates the arm64
# guests) and run Go tests inside them; see internal/vmtest/doc.go.
#
#   .ci/vmtest.sh                                    # the probe (./internal/vmtest, ^TestVM) on every kernel
#   .ci/vmtest.sh -kernel 6.12 -run '^TestVM' ./methods/ebpf
#   .ci/vmtest.sh -kernel arm64-6.12,arm64-6.1 -run '^TestVM' ./methods/ebpf
#   .ci/vmtest.sh -list                              # fetch the kernels and list them
#
# Arguments go to the command ./internal/vmtest/cmd/vmtest (-h lists them). As root
# it installs qemu (x86 and arm), adds arm64 as a foreign dpkg architecture
# (the arm64 kernels and busybox-static:arm64 are fetched with apt-get
# download; nothing arm64 is installed) and refreshes apt's lists first, so
# apt-get download finds the current kernel packages. Kernels are cached in $PROCTRACK_VMTEST_CACHE
# (default .vmtest/). Exits non-zero when a test fails (1) or a VM or download
# fails (2).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }

echo "== vmtest setup"
if [ "$(id -u)" = 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
	apt-get update -qq
	need=()
	command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
	command -v qemu-system-aarch64 >/dev/null 2>&1 || need+=(qemu-system-arm)
	# busybox-static replaces the dynamic busybox package, which may be in use
	# (initramfs-tools); when that one is installed the runner fetches
	# busybox-static into its cache with apt-get download instead.
	if ! dpkg-query -W -f='${Status}' busybox busybox-static 2>/dev/null | grep -q 'install ok installed'; then
		need+=(busybox-static)
	fi
	if [ ${#need[@]} -gt 0 ]; then
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
elif ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! command -v qemu-system-aarch64 >/dev/null 2>&1; then
	echo "vmtest: qemu-system-x86_64 or qemu-system-aarch64 missing; run as root or apt-get install qemu-system-x86 qemu-system-arm" >&2
	exit 2
fi
qemu-system-x86_64 --version | head -1
qemu-system-aarch64 --version | head -1
echo "setup done in $(elapsed)"

echo "== vmtest run"
# Built rather than `go run`, which turns every failure into exit status 1.
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
go build -o "$bindir/vmtest" ./internal/vmtest/cmd/vmtest
rc=0
"$bindir/vmtest" "$@" || rc=$?
echo "== vmtest finished in $(elapsed) (exit $rc)"
exit $rc
