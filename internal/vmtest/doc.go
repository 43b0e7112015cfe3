// Package vmtest runs Go tests inside other kernels: it boots Debian's
// kernel packages under qemu and runs static test binaries there, reading
// their output and exit codes from the serial console. proctrack uses it
// for what the development machines cannot show: BPF LSM programs, IMA, and
// a kernel below the LSM tier's floor.
//
// # Pipeline
//
//  1. Kernels: [Cache.Kernel] asks apt for the candidate of a Spec's package
//     (apt-cache show), follows Debian's meta packages ("linux-image-amd64"
//     depends on "linux-image-6.1.0-NN-amd64 (= V)") to the package holding
//     /boot/vmlinuz-*, fetches it with apt-get download and extracts only
//     /boot/vmlinuz-* and /boot/config-* through dpkg-deb --fsys-tarfile
//     into the cache (default <module>/.vmtest, git-ignored; env
//     PROCTRACK_VMTEST_CACHE). A cached kernel is used without downloading;
//     without apt metadata the newest cached kernel of the package is used.
//     No module is needed: Debian builds the 8250 serial console, BTF,
//     gzip initramfs support and every file system /init mounts into the
//     image.
//  2. Initramfs: [Initramfs] writes a gzip-compressed newc cpio archive
//     ([CPIOWriter], no external tool) holding a static busybox
//     (busybox-static: /bin/busybox, or one apt-get download fetches into
//     the cache), the test binaries (built by [BuildTest] with CGO_ENABLED=0
//     go test -c) with their testdata directories, /dev/console, and an
//     /init script.
//  3. /init mounts proc, sysfs, devtmpfs, devpts, securityfs, bpffs,
//     tracefs, debugfs and cgroup2, prints [MarkerBoot] with uname -r and
//     /sys/kernel/security/lsm, runs each test binary in /vmtest/<i> (its
//     working directory, with testdata) between [MarkerStart] and
//     [MarkerExit] lines, prints [MarkerDone] and powers off. Tests see
//     PROCTRACK_IN_VM=1 ([InVMEnv]); a test meant for the VM skips without
//     it, so go test on the host stays fast.
//  4. Boot: [Boot] starts qemu-system-x86_64 with -accel tcg -cpu max (no
//     KVM: nested KVM fails on the CI machines), 2 CPUs, 2 GiB, -no-reboot,
//     the serial console on stdout, and the kernel command line
//     [BaseCmdline] + the kernel's Cmdline + Options.Cmdline. It streams
//     the console, enforces a timeout and returns a [Result]: per test the
//     output and exit code, plus the boot and total times. [Run] is the
//     one-binary shortcut.
//
// # Kernels
//
// [DefaultSpecs] holds Debian 12's linux-image-6.12-amd64 (backports,
// through the security archive) booted with [LSMCmdline] and [IMACmdline],
// and linux-image-amd64 (6.1) with [IMACmdline] and its default LSM list.
// Both Debian kernels list bpf in CONFIG_LSM, so a BPF LSM program loads,
// attaches and denies on both; the 6.1 run therefore checks that the LSM
// tier's >= 6.2 floor is applied by version. IMA is active on both but has
// no policy unless one is given: ima_policy=tcb measures executed binaries,
// except on tmpfs, and the initramfs root is tmpfs unless rootfstype=ramfs
// is given.
//
// # Running
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./internal/vmtest -run TestVMProbe
//	go run ./internal/vmtest/cmd/vmtest -kernel 6.12 -pkg ./methods/ebpf -run '^TestVM'
//	.ci/vmtest.sh                                  # installs qemu, runs the probe on every kernel
//	PROCTRACK_VMTEST=1 go test -run TestPipeline ./internal/vmtest
//
// Under TCG a kernel reaches /init in 3 to 5 seconds and the probe takes
// under a second; the first run also downloads and extracts about 180 MB of
// packages (a few seconds).
package vmtest
