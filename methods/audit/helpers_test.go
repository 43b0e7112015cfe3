package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode of the test binary (see TestMain).
const helperEnv = "PROCTRACK_AUDIT_HELPER"

// TestMain runs the test binary as a helper child when helperEnv is set:
// seccomp filters, a clone with CLONE_NEWUSER, a Source without privilege.
func TestMain(m *testing.M) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	os.Exit(runHelper(mode))
}

func runHelper(mode string) int {
	switch mode {
	case "seccomp-log", "seccomp-errno", "seccomp-errno-log", "seccomp-kill":
		return seccompHelper(mode)
	case "clone-newuser":
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		if err := cmd.Run(); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("child", cmd.Process.Pid)
		return 0
	case "unavailable", "unavailable-multicast":
		s := New(Config{Multicast: mode == "unavailable-multicast"})
		err := s.Start(context.Background(), nopSink{})
		if err == nil {
			_ = s.Close()
			fmt.Println("started")
			return 0
		}
		fmt.Printf("%v|%v\n", errors.Is(err, methods.ErrUnavailable), err)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// Syscalls the seccomp helpers filter.
const (
	seccompLogSyscall   = unix.SYS_GETPID
	seccompErrnoSyscall = unix.SYS_GETPPID
	seccompKillSyscall  = unix.SYS_GETUID
)

// seccompHelper installs a one-syscall seccomp filter on every thread and
// makes that syscall, printing what it returned.
func seccompHelper(mode string) int {
	runtime.LockOSThread()
	var nativeArch uint32
	switch runtime.GOARCH {
	case "amd64":
		nativeArch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		nativeArch = unix.AUDIT_ARCH_AARCH64
	default:
		fmt.Println("unsupported arch")
		return 3
	}
	nr, action, flags := uint32(seccompLogSyscall), uint32(unix.SECCOMP_RET_LOG), uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC)
	switch mode {
	case "seccomp-errno":
		nr, action = seccompErrnoSyscall, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)
	case "seccomp-errno-log":
		nr, action = seccompErrnoSyscall, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)
		flags |= unix.SECCOMP_FILTER_FLAG_LOG
	case "seccomp-kill":
		nr, action = seccompKillSyscall, unix.SECCOMP_RET_KILL_PROCESS
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, K: nativeArch},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 1, K: nr},
		{Code: unix.BPF_RET | unix.BPF_K, K: action},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("no_new_privs:", err)
		return 1
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		fmt.Println("seccomp:", e)
		return 1
	}
	r, _, e := unix.RawSyscall(uintptr(nr), 0, 0, 0)
	fmt.Println("result", r, int(e))
	return 0
}

// nopSink drops everything.
type nopSink struct{}

func (nopSink) Event(*process.Event) {}
func (nopSink) Lost(uint64, string)  {}

// recSink records the events keep accepts (all when keep is nil).
type recSink struct {
	keep   func(*process.Event) bool
	mu     sync.Mutex
	events []*process.Event
	lost   uint64
	losses []string
}

func (s *recSink) Event(ev *process.Event) {
	if s.keep != nil && !s.keep(ev) {
		return
	}
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

func (s *recSink) Lost(n uint64, reason string) {
	s.mu.Lock()
	s.lost += n
	s.losses = append(s.losses, reason)
	s.mu.Unlock()
}

// snapshot returns the events recorded so far.
func (s *recSink) snapshot() []*process.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// find returns the events matching match.
func (s *recSink) find(match func(*process.Event) bool) []*process.Event {
	var out []*process.Event
	for _, ev := range s.snapshot() {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// wait waits up to timeout for an event matching match.
func (s *recSink) wait(t testing.TB, timeout time.Duration, what string, match func(*process.Event) bool) *process.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if evs := s.find(match); len(evs) > 0 {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v (%d events recorded)", what, timeout, len(s.snapshot()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// auditState is what the tests compare before and after: the kernel's
// settings and the rule list.
type auditState struct {
	enabled, pid, backlogLimit, backlogWait uint32
	rules                                   [][]byte
}

func (a auditState) String() string {
	return fmt.Sprintf("enabled=%d pid=%d backlog_limit=%d backlog_wait_time=%d rules=%d",
		a.enabled, a.pid, a.backlogLimit, a.backlogWait, len(a.rules))
}

func (a auditState) equal(b auditState) bool {
	return a.enabled == b.enabled && a.pid == b.pid && a.backlogLimit == b.backlogLimit &&
		a.backlogWait == b.backlogWait && slices.EqualFunc(a.rules, b.rules, bytes.Equal)
}

func readState(t testing.TB, c *libaudit.AuditClient) auditState {
	t.Helper()
	st, err := c.GetStatus()
	if err != nil {
		t.Fatalf("audit status: %v", err)
	}
	rules, err := c.GetRules()
	if err != nil {
		t.Fatalf("audit rules: %v", err)
	}
	return auditState{st.Enabled, st.PID, st.BacklogLimit, st.BacklogWaitTime, rules}
}

// guardAudit skips t without root, and otherwise returns a control client
// and the audit state now, registering a cleanup that puts the state back
// whatever the test did (rules added, audit enabled, pid taken, backlog
// changed). Cleanups run last-registered first, so a Source a test starts
// after this is closed before the state is checked.
func guardAudit(t testing.TB) (*libaudit.AuditClient, auditState) {
	t.Helper()
	proctest.RequireRoot(t, "kernel audit needs CAP_AUDIT_CONTROL")
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatalf("audit client: %v", err)
	}
	before := readState(t, c)
	t.Cleanup(func() {
		defer c.Close()
		now := readState(t, c)
		for _, r := range now.rules {
			if !slices.ContainsFunc(before.rules, func(b []byte) bool { return bytes.Equal(b, r) }) {
				if err := c.DeleteRule(r); err != nil {
					t.Errorf("cleanup: delete rule: %v", err)
				}
			}
		}
		if now.enabled != before.enabled {
			_ = c.SetEnabled(before.enabled != 0, libaudit.WaitForReply)
		}
		if now.pid != before.pid && now.pid == uint32(os.Getpid()) {
			_ = setStatus(c.Netlink, libaudit.AuditStatus{Mask: libaudit.AuditStatusPID})
		}
		if now.backlogLimit != before.backlogLimit {
			_ = c.SetBacklogLimit(before.backlogLimit, libaudit.WaitForReply)
		}
		if now.backlogWait != before.backlogWait {
			_ = c.SetBacklogWaitTime(int32(before.backlogWait), libaudit.WaitForReply)
		}
		if after := readState(t, c); !after.equal(before) {
			t.Errorf("audit state not restored: before %v, after %v", before, after)
		}
	})
	return c, before
}

// startSource starts a Source with cfg delivering to sink, closed at the
// end of the test.
func startSource(t testing.TB, cfg Config, sink methods.Sink) *Source {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s := New(cfg)
	if err := s.Start(context.Background(), sink); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// testLogger logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// truePath is /bin/true resolved, as exe= names it.
func truePath(t testing.TB) string {
	t.Helper()
	p, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Skipf("/bin/true: %v", err)
	}
	return p
}

// run runs a command to its end and returns its pid.
func run(t testing.TB, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return cmd.Process.Pid
}

// helper runs the test binary in a helper mode, through wrap (a command
// prefix such as setpriv ... --) when given, and returns its pid and
// output.
func helper(t testing.TB, mode string, wrap ...string) (int, string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(slices.Clone(wrap), self, "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	out, err := cmd.CombinedOutput()
	pid := 0
	if cmd.Process != nil {
		pid = cmd.Process.Pid
	}
	return pid, string(out), err
}
