package ebpf

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// TestLSMTier runs the LSM tier with every hook and IMA digests. It needs a
// kernel >= 6.2 with bpf in the active LSM list where LSM programs attach
// (the qemu guest of DESIGN.md: Debian's 6.12 with
// lsm=lockdown,capability,landlock,yama,bpf); elsewhere it skips, saying
// why. Only external tool used: none (the helpers are this test binary), so
// it runs from an initramfs of busybox and the static test binary.
func TestLSMTier(t *testing.T) {
	proctest.RequireRoot(t, "loading LSM programs")
	if r := ProbeTier(); r.Tier != TierLSM {
		t.Skipf("no LSM tier on this host: %s", r)
	}
	src, rec := startSource(t, Config{Tier: TierLSM, Hooks: AllHooks(), IMAHash: true})
	if src.Tier() != TierLSM {
		t.Fatalf("tier %q: %s", src.Tier(), src.Status())
	}
	progs := src.Programs()
	for _, h := range HookNames {
		if h == HookSchedProcessExec {
			continue // no LSM program: it runs in handle_exec
		}
		if !slices.Contains(progs, lsmPrograms[h]) {
			t.Errorf("hook %s: program %s not attached (%v)", h, lsmPrograms[h], progs)
		}
	}
	if slices.Contains(progs, "handle_sys_exit") {
		t.Error("the sys_exit program runs on the LSM tier")
	}

	// setuid: the hook sees both credentials.
	pid := runHelperPID(t, "setuid")
	if ev := rec.WaitFor(process.EventUID, pid, nil, 10*time.Second); ev == nil {
		t.Error("no uid event")
	} else if ev.Creds.Old.UID != 0 || ev.Creds.New.UID != 1000 || ev.Creds.New.EUID != 1000 || ev.Syscall != nil {
		t.Errorf("uid event %+v creds %+v", ev, ev.Creds)
	}

	// capset: new effective set without CAP_NET_RAW, the old one with it.
	pid = runHelperPID(t, "capset")
	if ev := rec.WaitFor(process.EventCapset, pid, nil, 10*time.Second); ev == nil {
		t.Error("no capset event")
	} else if ev.Creds.Old.CapEffective&(1<<unix.CAP_NET_RAW) == 0 || ev.Creds.New.CapEffective&(1<<unix.CAP_NET_RAW) != 0 {
		t.Errorf("capset: old eff %v new eff %v", ev.Creds.Old.CapEffective, ev.Creds.New.CapEffective)
	}

	// prctl: the option and arguments.
	pid = runHelperPID(t, "prctl")
	if rec.WaitFor(process.EventPrctl, pid, func(ev *process.Event) bool {
		return ev.Syscall != nil && ev.Syscall.Args[0] == unix.PR_SET_NO_NEW_PRIVS && ev.Syscall.Args[1] == 1
	}, 10*time.Second) == nil {
		t.Error("no prctl(PR_SET_NO_NEW_PRIVS) event")
	}

	// userns_create runs in the process calling clone.
	cmd := helper("noop")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("clone(CLONE_NEWUSER): %v %s", err, out)
	}
	if rec.WaitFor(process.EventUserNS, os.Getpid(), nil, 10*time.Second) == nil {
		t.Error("no userns event")
	}

	// ptrace_access_check in attach mode.
	cmd = helper("ptrace")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Wait()
	tracee, _ := strconv.Atoi(strings.TrimSpace(line))
	if ev := rec.WaitFor(process.EventPtrace, tracee, nil, 10*time.Second); ev == nil || ev.Tracer != cmd.Process.Pid {
		t.Errorf("ptrace event %+v (tracer %d)", ev, cmd.Process.Pid)
	}

	// bprm_check: the IMA digest of the binary in the exec event, when the
	// kernel has IMA.
	pid = runHelperPID(t, "noop")
	ev := rec.WaitFor(process.EventExec, pid, nil, 10*time.Second)
	if ev == nil {
		t.Fatal("no exec event of the helper")
	}
	digest := ev.Process.Checksums[process.HashIMA]
	t.Logf("IMA digest of %s: %q", ev.Process.Path, digest)
	if _, err := os.Stat("/sys/kernel/security/ima"); err != nil {
		t.Logf("no IMA in this kernel (%v): digest not required", err)
	} else if algo, hexDigest, ok := strings.Cut(digest, ":"); !ok {
		t.Errorf("no IMA digest (%q) although IMA is active", digest)
	} else if algo == "sha256" {
		b, err := os.ReadFile(ev.Process.Path)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexDigest {
			t.Errorf("IMA sha256 %s, file's %x", hexDigest, sum)
		}
	}
	c := src.Counters()
	if c.LSM == 0 || c.Syscall != 0 {
		t.Errorf("counters %+v", c)
	}
	t.Logf("counters %+v", c)
}
