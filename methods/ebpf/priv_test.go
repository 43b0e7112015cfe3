package ebpf

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// The privilege tests run on whichever tier the host gives, and check what
// both tiers report alike.

// runHelperPID runs a helper mode to its end and returns its pid.
func runHelperPID(t *testing.T, mode string) int {
	t.Helper()
	cmd := helper(mode)
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("helper %s: %v %s", mode, err, out)
	}
	return cmd.Process.Pid
}

func TestPrivilegeSetuid(t *testing.T) {
	_, rec := startSource(t, Config{Hooks: map[string]bool{HookSetuid: true}})
	pid := runHelperPID(t, "setuid")
	ev := rec.WaitFor(process.EventUID, pid, nil, 10*time.Second)
	if ev == nil {
		t.Fatal("no uid event")
	}
	if ev.Creds == nil || ev.Creds.New.UID != 1000 || ev.Creds.New.EUID != 1000 || ev.Creds.New.SUID != 1000 {
		t.Errorf("creds %+v", ev.Creds)
	}
	if ev.Method != process.MethodEbpf || ev.Time.IsZero() {
		t.Errorf("event %+v", ev)
	}
	if sc := ev.Syscall; sc != nil && (sc.Name != "setresuid" || sc.Arch != nativeSyscalls.Arch || sc.Result != 0 || sc.Args[0] != 1000) {
		t.Errorf("syscall %+v", sc)
	}
	if rec.WaitFor(process.EventGID, pid, nil, 0) != nil {
		t.Error("a gid event though only the setuid hook is on")
	}
}

func TestPrivilegeSetprivTool(t *testing.T) {
	setpriv := proctest.RequireTool(t, "setpriv")
	_, rec := startSource(t, Config{})
	cmd := exec.Command(setpriv, "--reuid=1000", "--regid=1000", "--clear-groups", "true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("setpriv: %v %s", err, out)
	}
	pid := cmd.Process.Pid
	uid := rec.WaitFor(process.EventUID, pid, func(ev *process.Event) bool { return ev.Creds.New.UID == 1000 }, 10*time.Second)
	if uid == nil {
		t.Error("no uid event with new uid 1000")
	}
	gid := rec.WaitFor(process.EventGID, pid, func(ev *process.Event) bool { return ev.Creds.New.GID == 1000 }, 10*time.Second)
	if gid == nil {
		t.Error("no gid event with new gid 1000")
	}
	groups := rec.WaitFor(process.EventGID, pid, func(ev *process.Event) bool {
		return ev.Syscall == nil || ev.Syscall.Name == "setgroups"
	}, 10*time.Second)
	if groups == nil {
		t.Error("no setgroups event")
	}
}

func TestPrivilegeCapset(t *testing.T) {
	_, rec := startSource(t, Config{Hooks: map[string]bool{HookCapset: true}})
	pid := runHelperPID(t, "capset")
	ev := rec.WaitFor(process.EventCapset, pid, nil, 10*time.Second)
	if ev == nil {
		t.Fatal("no capset event")
	}
	if ev.Creds.New.CapEffective&(1<<13) != 0 || ev.Creds.New.CapPermitted&(1<<13) == 0 {
		t.Errorf("new sets: eff %v prm %v", ev.Creds.New.CapEffective, ev.Creds.New.CapPermitted)
	}
}

func TestPrivilegePrctl(t *testing.T) {
	_, rec := startSource(t, Config{Hooks: map[string]bool{HookPrctl: true}})
	pid := runHelperPID(t, "prctl")
	ev := rec.WaitFor(process.EventPrctl, pid, func(ev *process.Event) bool {
		return ev.Syscall != nil && ev.Syscall.Args[0] == 38 // PR_SET_NO_NEW_PRIVS
	}, 10*time.Second)
	if ev == nil {
		t.Fatal("no prctl(PR_SET_NO_NEW_PRIVS) event")
	}
	if ev.Syscall.Name != "prctl" || ev.Syscall.Args[1] != 1 {
		t.Errorf("syscall %+v", ev.Syscall)
	}
}

func TestPrivilegeUserNS(t *testing.T) {
	_, rec := startSource(t, Config{Hooks: map[string]bool{HookCreateUserNS: true}})
	// clone(CLONE_NEWUSER), from Go's fork.
	cmd := helper("noop")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("clone(CLONE_NEWUSER): %v %s", err, out)
	}
	child := cmd.Process.Pid
	// The tracepoint tier reports the child (its clone returns 0 in the
	// new namespace) where the child passes sys_exit (x86_64), else the
	// parent, whose clone returns the child's pid (arm64); the LSM hook
	// runs in the parent.
	ev := rec.WaitFor(process.EventUserNS, child, nil, 5*time.Second)
	if ev == nil {
		ev = rec.WaitFor(process.EventUserNS, os.Getpid(), nil, time.Second)
	}
	if ev == nil {
		t.Fatal("no userns event for clone(CLONE_NEWUSER)")
	}
	if sc := ev.Syscall; sc != nil {
		inChild := ev.PID == child && ev.Creds.New.UserNS != process.InitUserNS
		byParent := ev.PID == os.Getpid() && sc.Result == int64(child)
		if sc.Name != "clone" && sc.Name != "clone3" || !inChild && !byParent {
			t.Errorf("pid %d (child %d), syscall %+v, user ns %d", ev.PID, child, sc, ev.Creds.New.UserNS)
		}
	}

	// unshare(CLONE_NEWUSER), from unshare(1).
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare not installed")
	}
	u := exec.Command(unshare, "--user", "true")
	if out, err := u.CombinedOutput(); err != nil {
		t.Fatalf("unshare --user: %v %s", err, out)
	}
	ev = rec.WaitFor(process.EventUserNS, u.Process.Pid, nil, 5*time.Second)
	if ev == nil {
		t.Fatal("no userns event for unshare --user")
	}
	if sc := ev.Syscall; sc != nil && (sc.Name != "unshare" || sc.Args[0]&syscall.CLONE_NEWUSER == 0 || ev.Creds.New.UserNS == process.InitUserNS) {
		t.Errorf("syscall %+v, user ns %d", sc, ev.Creds.New.UserNS)
	}
}

func TestPrivilegePtrace(t *testing.T) {
	_, rec := startSource(t, Config{Hooks: map[string]bool{HookPtraceAccessCheck: true}})
	cmd := helper("ptrace")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	tracee, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper printed %q", line)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ptrace helper: %v", err)
	}
	tracer := cmd.Process.Pid
	ev := rec.WaitFor(process.EventPtrace, tracee, func(ev *process.Event) bool { return ev.Tracer == tracer }, 10*time.Second)
	if ev == nil {
		t.Fatal("no ptrace attach event")
	}
	if sc := ev.Syscall; sc != nil && (sc.Name != "ptrace" || sc.Args[0] != ptraceAttach) {
		t.Errorf("syscall %+v", sc)
	}

	// strace, when installed: PTRACE_SEIZE.
	strace, err := exec.LookPath("strace")
	if err != nil {
		return
	}
	s := exec.Command(strace, "-f", "-o", "/dev/null", "true")
	if out, err := s.CombinedOutput(); err != nil {
		t.Fatalf("strace: %v %s", err, out)
	}
	if rec.WaitUntil(10*time.Second, func(evs []*process.Event) bool {
		for _, ev := range evs {
			if ev.Kind == process.EventPtrace && ev.Tracer == s.Process.Pid {
				return true
			}
		}
		return false
	}) == false {
		t.Error("no ptrace event with strace as the tracer")
	}
}

// TestNoHooks checks that an empty hook map attaches no privilege program.
func TestNoHooks(t *testing.T) {
	src, rec := startSource(t, Config{Hooks: map[string]bool{}})
	for _, p := range src.Programs() {
		if p != "handle_exec" && p != "handle_fork" && p != "handle_exit" {
			t.Errorf("program %s attached", p)
		}
	}
	pid := runHelperPID(t, "setuid")
	if rec.WaitFor(process.EventExit, pid, nil, 10*time.Second) == nil {
		t.Fatal("no exit event")
	}
	if ev := rec.WaitFor(process.EventUID, pid, nil, 0); ev != nil {
		t.Errorf("uid event with no hooks: %+v", ev)
	}
}

func TestUnknownHook(t *testing.T) {
	src := New(Config{Hooks: map[string]bool{"setuid": true, "nonsense": true}})
	if err := src.Start(t.Context(), nopSink{}); err == nil || !strings.Contains(err.Error(), "nonsense") {
		src.Close()
		t.Fatalf("Start: %v", err)
	}
}
