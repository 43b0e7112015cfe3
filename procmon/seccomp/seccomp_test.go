package seccomp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	runHelper()
	os.Exit(m.Run())
}

// helperCmd returns the command that re-executes the test binary in a
// helper mode.
func helperCmd(mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_ARGS="+strings.Join(args, ","))
	return cmd
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// collector gathers a Watcher's violations in the background.
type collector struct {
	mu  sync.Mutex
	evs []process.Event
}

func startWatcher(t *testing.T) *collector {
	t.Helper()
	proctest.RequireRoot(t, "reading the audit multicast group needs CAP_AUDIT_READ")
	ctx, cancel := context.WithCancel(context.Background())
	evs, stop, err := WatchViolations(ctx, quietLogger())
	if err != nil {
		cancel()
		t.Fatalf("WatchViolations: %v", err)
	}
	c := &collector{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range evs {
			c.mu.Lock()
			c.evs = append(c.evs, ev)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop watcher: %v", err)
		}
		cancel()
		<-done
	})
	return c
}

// of returns the violations of pid.
func (c *collector) of(pid int) []process.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []process.Event
	for _, ev := range c.evs {
		if ev.PID == pid {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor waits until a violation of pid satisfies ok.
func (c *collector) waitFor(pid int, d time.Duration, ok func(process.Event) bool) (process.Event, bool) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, ev := range c.of(pid) {
			if ok(ev) {
				return ev, true
			}
		}
	}
	return process.Event{}, false
}

func describe(evs []process.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.Syscall != nil {
			fmt.Fprintf(&b, "%s(%d)/%s ", ev.Syscall.Name, ev.Syscall.Number, ev.Syscall.SeccompAction)
		}
	}
	return b.String()
}

func unameMachine() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return unix.ByteSliceToString(u.Machine[:])
}

// TestErrnoPolicy: a child that denies getppid with errno gets EPERM
// from it, other calls still work, and every one of its threads has the
// filter and no_new_privs.
func TestErrnoPolicy(t *testing.T) {
	out, err := helperCmd(helperErrno).Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	s := strings.TrimSpace(string(out))
	if !strings.HasPrefix(s, "getppid=EPERM getpid_ok=true ") || !strings.HasSuffix(s, " modes=1/2") {
		t.Fatalf("child printed %q: want getppid=EPERM, getpid working, every thread NoNewPrivs 1 and Seccomp 2", s)
	}
	if strings.Contains(s, "threads=1 ") {
		t.Errorf("child printed %q: want several threads (the Go runtime's)", s)
	}
}

// TestLogPolicyReported: a child with a log policy for getppid is
// reported by the Watcher (audit multicast) and by a monitor running the
// audit method, naming the syscall with its number and architecture.
func TestLogPolicyReported(t *testing.T) {
	c := startWatcher(t)
	m, err := procmon.New(procmon.Config{Method: procmon.MethodAudit, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Method() != procmon.MethodAudit {
		t.Fatalf("monitor runs %q: %+v", m.Method(), m.Status())
	}
	var monMu sync.Mutex
	var fromMonitor []process.Event
	go func() {
		for ev := range m.Events() {
			if ev.Kind == procmon.EventSeccomp {
				monMu.Lock()
				fromMonitor = append(fromMonitor, ev)
				monMu.Unlock()
			}
		}
	}()

	child := proctest.Start(t, helperCmd(helperLog))
	child.WaitLine(t, "called")
	wantNum := unix.SYS_GETPPID
	isGetppid := func(ev process.Event) bool {
		return ev.Kind == process.EventSeccomp && ev.Syscall != nil && ev.Syscall.Name == "getppid"
	}
	ev, ok := c.waitFor(child.PID, 10*time.Second, isGetppid)
	if !ok {
		t.Fatalf("watcher: no getppid violation for pid %d; got %s", child.PID, describe(c.of(child.PID)))
	}
	sc := ev.Syscall
	if sc.Number != wantNum || sc.Arch != unameMachine() || sc.SeccompAction != "log" {
		t.Errorf("watcher: syscall %+v, want getppid number %d arch %s action log", *sc, wantNum, unameMachine())
	}
	if ev.Process == nil || ev.Process.ID != child.PID || ev.Process.Path == "" {
		t.Errorf("watcher: process %+v, want pid %d with exe", ev.Process, child.PID)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		monMu.Lock()
		var found *process.Event
		for i := range fromMonitor {
			if fromMonitor[i].PID == child.PID && isGetppid(fromMonitor[i]) {
				found = &fromMonitor[i]
			}
		}
		monMu.Unlock()
		if found != nil {
			if found.Syscall.Number != wantNum || found.Syscall.SeccompAction != "log" || found.Method != process.MethodAudit {
				t.Errorf("audit method: %+v", *found.Syscall)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit method: no getppid violation for pid %d", child.PID)
		}
	}
	_ = child.Stdin.Close()
}

// TestWatcherUnavailable: without CAP_AUDIT_READ the Watcher's error
// matches methods.ErrUnavailable. The check runs in a child that drops
// the capability (setpriv).
func TestWatcherUnavailable(t *testing.T) {
	proctest.RequireRoot(t, "dropping a capability")
	setpriv := proctest.RequireTool(t, "setpriv")
	cmd := exec.Command(setpriv, "--inh-caps=-audit_read", "--bounding-set=-audit_read", "--", os.Args[0], "-test.run=^TestWatcherUnavailableChild$")
	cmd.Env = append(os.Environ(), "PROCTRACK_SECCOMP_NOCAP=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "unavailable=true") {
		t.Fatalf("child printed %s", out)
	}
}

func TestWatcherUnavailableChild(t *testing.T) {
	if os.Getenv("PROCTRACK_SECCOMP_NOCAP") == "" {
		t.Skip("run by TestWatcherUnavailable")
	}
	_, _, err := WatchViolations(context.Background(), quietLogger())
	fmt.Printf("unavailable=%v %v\n", errors.Is(err, methods.ErrUnavailable), err)
}

// monitorRun is one monitor child's outcome.
type monitorRun struct {
	pid int
	err error
}

// runMonitorUnder runs a monitor child with method under a policy variant,
// gives it a process to see, and returns its pid.
func runMonitorUnder(t *testing.T, method, variant string) monitorRun {
	cmd := helperCmd(helperMonitor, method, variant)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	child := proctest.Start(t, cmd)
	line, err := child.Out.ReadString('\n')
	if line != "ready\n" {
		return monitorRun{child.PID, fmt.Errorf("child printed %q (%v), stderr %s", line, err, stderr.String())}
	}
	tag := "seccomp-" + method + "-" + strconv.Itoa(child.PID)
	work := helperCmd(helperSleep)
	work.Args = append(work.Args, tag)
	if err := work.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = work.Wait() }()
	if _, err := io.WriteString(child.Stdin, tag+"\n"); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(child.Out)
	werr := child.Cmd.Wait()
	out := string(rest)
	if werr != nil || !strings.Contains(out, "seen "+strconv.Itoa(work.Process.Pid)+" sha256=") || !strings.HasSuffix(out, "closed\n") {
		return monitorRun{child.PID, fmt.Errorf("child: %v: printed %q, stderr %s", werr, out, stderr.String())}
	}
	return monitorRun{child.PID, nil}
}

// TestDefaultPolicy runs a monitor with each method under the built-in
// policy (with default_action log, so a call the list misses runs and is
// reported rather than failing) and sees no violation; a policy without
// one of the calls a method needs is reported naming that call.
func TestDefaultPolicy(t *testing.T) {
	if AllowList(unameGOARCH()) == nil {
		t.Skip("no built-in policy for this architecture")
	}
	c := startWatcher(t)
	type tc struct {
		name, method, variant, want string
	}
	cases := []tc{
		{"ebpf", procmon.MethodEbpf, "default", ""},
		{"ebpf-tracepoint", methodEbpfTracepoint, "default", ""},
		{"netlink", procmon.MethodNetlink, "default", ""},
		{"audit", procmon.MethodAudit, "default", ""},
		{"proc", procmon.MethodProc, "default", ""},
		// The policy as an agent installs it: errno, logged.
		{"netlink-errno", procmon.MethodNetlink, "errno", ""},
		{"ebpf-errno", procmon.MethodEbpf, "errno", ""},
		// Needed by exactly one method each: loading BPF programs, and
		// binding the proc connector's netlink socket.
		{"ebpf-without-bpf", procmon.MethodEbpf, "without=bpf", "bpf"},
		{"netlink-without-bind", procmon.MethodNetlink, "without=bind", "bind"},
	}
	runs := make([]monitorRun, len(cases))
	t.Run("group", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				runs[i] = runMonitorUnder(t, tc.method, tc.variant)
				if runs[i].err != nil {
					t.Fatal(runs[i].err)
				}
			})
		}
	})
	// The records of a call are out at once; the audit reassembly holds
	// them up to its timeout (1 s).
	time.Sleep(2500 * time.Millisecond)
	for i, tc := range cases {
		if runs[i].err != nil {
			continue
		}
		got := c.of(runs[i].pid)
		if tc.want == "" {
			if len(got) != 0 {
				t.Errorf("%s: the built-in policy misses %s", tc.name, describe(got))
			}
			continue
		}
		found := false
		for _, ev := range got {
			found = found || ev.Syscall != nil && ev.Syscall.Name == tc.want && ev.Syscall.SeccompAction == "log" &&
				ev.Process != nil && ev.Process.ID == runs[i].pid
		}
		if !found {
			t.Errorf("%s: no violation naming %s; got %s", tc.name, tc.want, describe(got))
		}
	}
}

func unameGOARCH() string {
	switch unameMachine() {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return ""
}

// TestWatcherCycles starts and stops 200 Watchers, ending every other one
// by its context: Events is closed, no goroutine or descriptor is left,
// and a second Start fails with methods.ErrClosed.
func TestWatcherCycles(t *testing.T) {
	proctest.RequireRoot(t, "reading the audit multicast group needs CAP_AUDIT_READ")
	proctest.CheckCycles(t, 200, func(i int) {
		w := NewWatcher(WatcherConfig{Logger: quietLogger()})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			cancel()
		} else if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for range w.Events() { // ends when Events is closed
		}
		if err := w.Start(context.Background()); !errors.Is(err, methods.ErrClosed) {
			t.Fatalf("Start after the end: %v, want methods.ErrClosed", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
