package vmtest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// ProbePrefix starts the key=value lines TestVMProbe prints for the host.
const ProbePrefix = "PROCTRACK-VMTEST-PROBE "

// probeReport prints one finding as a machine-readable line.
func probeReport(key string, value any) {
	fmt.Printf("%s%s=%v\n", ProbePrefix, key, value)
}

// TestVMProbe runs inside the test VM (it skips elsewhere) and reports what
// the kernel offers proctrack: release, BTF, the LSM list, whether a BPF LSM
// program loads, attaches and takes effect, and whether IMA measures an
// executed binary with the digest sha256 gives. It fails when the bpf LSM
// is listed but an LSM program cannot deny an open, or when the command
// line asks IMA for the tcb policy on a measured root but the executed
// binary is not measured with its sha256.
func TestVMProbe(t *testing.T) {
	RequireVM(t, "./internal/vmtest")
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	probeReport("release", unix.ByteSliceToString(u.Release[:]))
	cmdline, _ := os.ReadFile("/proc/cmdline")
	probeReport("cmdline", strings.TrimSpace(string(cmdline)))

	t.Run("btf", func(t *testing.T) {
		st, err := os.Stat("/sys/kernel/btf/vmlinux")
		probeReport("btf", err == nil)
		if err != nil {
			t.Fatalf("no kernel BTF: %v", err)
		}
		t.Logf("/sys/kernel/btf/vmlinux: %d bytes", st.Size())
	})

	lsm, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		t.Fatalf("securityfs: %v", err)
	}
	lsms := strings.Split(strings.TrimSpace(string(lsm)), ",")
	probeReport("lsm", strings.Join(lsms, ","))
	bpfListed := false
	for _, l := range lsms {
		bpfListed = bpfListed || l == "bpf"
	}

	t.Run("bpf_lsm", func(t *testing.T) { probeBPFLSM(t, bpfListed) })
	t.Run("ima", func(t *testing.T) {
		probeIMA(t, strings.Contains(" "+string(cmdline)+" ", " ima_policy=tcb "))
	})
}

// probeBPFLSM loads an LSM program on file_open that denies every open of
// this process, attaches it, checks an open fails with EPERM, detaches it
// and checks the open succeeds again.
func probeBPFLSM(t *testing.T, bpfListed bool) {
	pid := os.Getpid()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:       "probe_file_open",
		Type:       ebpf.LSM,
		AttachType: ebpf.AttachLSMMac,
		AttachTo:   "file_open",
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.FnGetCurrentPidTgid.Call(),
			asm.RSh.Imm(asm.R0, 32),
			asm.JNE.Imm(asm.R0, int32(pid), "allow"),
			asm.Mov.Imm(asm.R0, -int32(unix.EPERM)),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
			asm.Return(),
		},
	})
	probeReport("lsm_prog_load", errText(err))
	if err != nil {
		if bpfListed {
			t.Fatalf("bpf is an active LSM but an LSM program does not load: %v", err)
		}
		t.Skipf("LSM program does not load (bpf not in the LSM list): %v", err)
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	probeReport("lsm_prog_attach", errText(err))
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			// The kernel's answer where it cannot build the BPF trampoline
			// an LSM program attaches through (seen on Debian's arm64 6.1:
			// arm64 has the ftrace direct calls trampolines need from
			// 6.4). Nothing of the LSM tier can run there.
			t.Skipf("the kernel cannot attach an LSM program (no BPF trampolines): %v", err)
		}
		if bpfListed {
			t.Fatalf("bpf is an active LSM but the LSM program does not attach: %v", err)
		}
		t.Skipf("LSM program does not attach (bpf not in the LSM list): %v", err)
	}
	f, openErr := os.Open("/etc/passwd")
	if openErr == nil {
		f.Close()
	}
	if err := l.Close(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	enforced := errors.Is(openErr, unix.EPERM)
	probeReport("lsm_enforced", enforced)
	switch {
	case bpfListed && !enforced:
		t.Errorf("bpf LSM attached but open returned %v, want EPERM", openErr)
	case !bpfListed && enforced:
		t.Errorf("bpf is not in the LSM list but the LSM program denied the open")
	}
	f, err = os.Open("/etc/passwd")
	if err != nil {
		t.Fatalf("open after detach: %v", err)
	}
	f.Close()
}

// probeIMA reports whether IMA is active and, when the tcb policy is asked
// for, checks that executing a fresh binary adds a measurement whose digest
// is the file's sha256.
func probeIMA(t *testing.T, tcb bool) {
	const list = "/sys/kernel/security/ima/ascii_runtime_measurements"
	before, err := imaMeasurements(list)
	probeReport("ima_active", err == nil)
	if err != nil {
		if tcb {
			t.Fatalf("ima_policy=tcb but no IMA measurement list: %v", err)
		}
		t.Skipf("IMA inactive: %v", err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil {
		t.Fatal(err)
	}
	rootFS := map[int64]string{unix.TMPFS_MAGIC: "tmpfs", unix.RAMFS_MAGIC: "ramfs"}[int64(sfs.Type)]
	probeReport("rootfs", rootFS)
	probeReport("ima_measurements_at_start", len(before))
	if len(before) > 0 {
		f := strings.Fields(before[0])
		if len(f) >= 3 {
			probeReport("ima_template", f[2])
		}
	}

	// A fresh inode: IMA measures a file once, and busybox already ran.
	const probe = "/tmp/ima-probe"
	sum, err := copyFile(probe, "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(probe)
	cmd.Args[0] = "true" // busybox runs the applet argv[0] names
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("exec %s: %v %s", probe, err, out)
	}
	after, err := imaMeasurements(list)
	if err != nil {
		t.Fatal(err)
	}
	probeReport("ima_measurements_after_exec", len(after))
	var entry string
	for _, l := range after[len(before):] {
		if f := strings.Fields(l); len(f) >= 5 && f[4] == probe {
			entry = l
		}
	}
	t.Logf("new measurements: %d; entry for %s: %q", len(after)-len(before), probe, entry)
	measured := entry != ""
	probeReport("ima_measured_exec", measured)
	if measured {
		digest := strings.Fields(entry)[3] // e.g. sha256:<hex>
		match := digest == "sha256:"+sum
		probeReport("ima_digest", digest)
		probeReport("ima_digest_matches_sha256", match)
		if !match {
			t.Errorf("IMA digest %s, sha256 of the file %s", digest, sum)
		}
	}
	if tcb && rootFS != "tmpfs" && !measured {
		t.Errorf("ima_policy=tcb on %s but executing %s added no measurement", rootFS, probe)
	}
}

func imaMeasurements(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// copyFile copies src to a new file dst, executable, and returns the
// sha256 of the content.
func copyFile(dst, src string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return hex.EncodeToString(h.Sum(nil)), err
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
