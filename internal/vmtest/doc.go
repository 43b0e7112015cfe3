// Package vmtest runs Go tests inside other kernels: it boots Debian's
// kernel packages under qemu and runs static test binaries there, reading
// their output and exit codes from the serial console. proctrack uses it
// for what the development machines cannot show: BPF LSM programs, IMA, a
// kernel below the LSM tier's floor, and arm64.
//
// # Pipeline
//
//  1. Kernels: [Cache.Kernel] asks apt for the candidate of a Spec's package
//     (apt-cache show), follows Debian's meta packages ("linux-image-amd64"
//     depends on "linux-image-6.1.0-NN-amd64 (= V)") to the package holding
//     /boot/vmlinuz-*, fetches it with apt-get download (an arm64 package
//     with its qualifier, "linux-image-arm64:arm64": dpkg --add-architecture
//     arm64 and apt-get update make apt see them) and extracts only
//     /boot/vmlinuz-* and /boot/config-* through dpkg-deb --fsys-tarfile
//     into the cache (default <module>/.vmtest, git-ignored; env
//     PROCTRACK_VMTEST_CACHE). A cached kernel is used without downloading;
//     without apt metadata the newest cached kernel of the package is used.
//     No module is needed: Debian builds the 8250 serial console, BTF,
//     gzip initramfs support and every file system /init mounts into the
//     image.
//  2. Initramfs: [Initramfs] writes a gzip-compressed newc cpio archive
//     ([CPIOWriter], no external tool) holding a static busybox of the
//     kernel's architecture ([Cache.BusyboxArch]: /bin/busybox when it is
//     static and of that architecture, or busybox-static[:arm64] fetched
//     into the cache with apt-get download), the test binaries (built by
//     [BuildTestArch] with CGO_ENABLED=0 GOARCH=<arch> go test -c: cross-
//     compiled for arm64) with their testdata directories, /dev/console,
//     and an /init script. The same script runs on both architectures.
//  3. /init mounts proc, sysfs, devtmpfs, devpts, securityfs, bpffs,
//     tracefs, debugfs and cgroup2, prints [MarkerBoot] with uname -r and
//     /sys/kernel/security/lsm, runs each test binary in /vmtest/<i> (its
//     working directory, with testdata) between [MarkerStart] and
//     [MarkerExit] lines, prints [MarkerDone] and powers off. Tests see
//     PROCTRACK_IN_VM=1 ([InVMEnv]); a test meant for the VM calls
//     [RequireVM], which skips without it, so go test on the host stays
//     fast.
//  4. Boot: [Boot] starts qemu-system-x86_64 with -accel tcg -cpu max (no
//     KVM: nested KVM fails on the CI machines), or for arm64
//     qemu-system-aarch64 (Debian's qemu-system-arm) with -M virt -accel
//     tcg -cpu max,pauth-impdef=on, 2 CPUs, 2 GiB, -no-reboot, the serial
//     console on stdout (ttyS0; the virt machine's PL011, ttyAMA0), and the
//     kernel command line [Cmdline]: the console, [BaseCmdline], the
//     kernel's Cmdline and Options.Cmdline. Debian's arm64 vmlinuz is the
//     uncompressed Image, which qemu boots directly. It streams
//     the console, enforces a timeout and returns a [Result]: per test the
//     output and exit code, plus the boot and total times. [Run] is the
//     one-binary shortcut.
//
// # Kernels
//
// [DefaultSpecs] holds Debian 12's linux-image-6.12-amd64 (backports,
// through the security archive) booted with [LSMCmdline] and [IMACmdline],
// and linux-image-amd64 (6.1) with [IMACmdline] and its default LSM list;
// and the same two of the arm64 port, "arm64-6.12"
// (linux-image-6.12-arm64:arm64) and "arm64-6.1" (linux-image-arm64:arm64),
// with the same command lines.
// Both Debian kernels list bpf in CONFIG_LSM, so a BPF LSM program loads,
// attaches and denies on both; the 6.1 run therefore checks that the LSM
// tier's >= 6.2 floor is applied by version. On arm64 6.1 an LSM program
// loads but does not attach ("not supported": the kernel cannot build the
// BPF trampoline, arm64 has the ftrace direct calls it needs from 6.4); the
// probe reports it and the tracepoint tier runs, as on x86_64 6.1. IMA is
// active on all four but has
// no policy unless one is given: ima_policy=tcb measures executed binaries,
// except on tmpfs, and the initramfs root is tmpfs unless rootfstype=ramfs
// is given.
//
// # Running
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./internal/vmtest -run TestVMProbe
//	go run ./internal/vmtest/cmd/vmtest -kernel 6.12 -pkg ./methods/ebpf -run '^TestVM'
//	go run ./internal/vmtest/cmd/vmtest -kernel arm64-6.12,arm64-6.1 -pkg ./methods/ebpf -run '^TestVM'
//	go run ./internal/vmtest/cmd/vmtest -kernel arm64-6.12 -btf /tmp  # the kernel's BTF, for bpf/vmlinux_arm64.h
//	.ci/vmtest.sh                                  # installs qemu, runs the probe on every kernel
//	PROCTRACK_VMTEST=1 go test -run TestPipeline ./internal/vmtest
//
// Under TCG a kernel reaches /init in 3 to 12 seconds, arm64 as fast as
// x86_64, and the probe takes about a second; make vmtest (the three
// packages of then on the four kernels; the exit counter's and the socket
// iterator's packages, added since, take about 3 s more per guest) took 6m13s on the shared 2-core development
// VM, about 2 minutes for each 6.12 and 45 seconds for each 6.1 (the
// README's kernel matrix). The first run also downloads and extracts about
// 330 MB of packages (x86_64 180, arm64 155).
package vmtest
