package netlink

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// testBinary returns the path of the running test binary.
func testBinary(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// helper runs the test binary in helper mode (see runHelper) with cmd's
// settings and returns the line it printed.
func helper(t *testing.T, mode string, wrap []string, attr *syscall.SysProcAttr) string {
	t.Helper()
	args := append(append([]string(nil), wrap...), testBinary(t))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.SysProcAttr = attr
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %v: %v\nstdout: %s\nstderr: %s", args, err, out, stderr.Bytes())
	}
	line := strings.TrimSpace(string(out))
	t.Logf("helper %v: %s", wrap, line)
	return line
}

// TestWithoutNetAdmin runs the source without CAP_NET_ADMIN, as root and
// as nobody. Whether the kernel lets such a process join the proc
// connector's group differs between machines (Linux 6.6 allowed it, yet
// kernels of that version and later refuse it on some machines), so the
// test asks the kernel first with an independent probe: where the join is
// allowed, Start must work and see events; where it is refused, Start must
// fail with ErrUnavailable naming CAP_NET_ADMIN.
func TestWithoutNetAdmin(t *testing.T) {
	proctest.RequireRoot(t, "dropping CAP_NET_ADMIN from a root child")
	setpriv := proctest.RequireTool(t, "setpriv")
	for _, wrap := range [][]string{
		{setpriv, "--inh-caps=-all", "--bounding-set=-net_admin", "--"},
		{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"},
	} {
		joins := proctest.JoinsProcConnector(t, wrap, nil)
		line := helper(t, "start", wrap, nil)
		if joins {
			if line != "started events=1" {
				t.Errorf("%v: the kernel lets this process join, but: %q, want the source to work", wrap, line)
			}
			continue
		}
		if !strings.HasPrefix(line, "unavailable: ") || !strings.Contains(line, "CAP_NET_ADMIN") {
			t.Errorf("%v: the kernel refuses the join, but: %q, want unavailable naming CAP_NET_ADMIN", wrap, line)
		}
	}
}

// TestUnavailableNamespaces runs the source where the proc connector does not
// report: in a new user namespace, a new pid namespace (both caught before
// the kernel is asked, and, with that check disabled, by the missing
// acknowledgement) and a new network namespace.
func TestUnavailableNamespaces(t *testing.T) {
	proctest.RequireRoot(t, "creating namespaces")
	userNS := &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
	for _, tt := range []struct {
		name, mode string
		attr       *syscall.SysProcAttr
		reason     string
	}{
		{"user", "start", userNS, "initial user and pid namespaces; this process is in user namespace"},
		{"pid", "start", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}, "initial user and pid namespaces; this process is in pid namespace"},
		// Whether the kernel even lets a process in another user
		// namespace join the group differs between machines: where it
		// refuses, the reason is the missing CAP_NET_ADMIN (see below).
		{"user no check", "skip-ns-check", userNS, "no acknowledgement of PROC_CN_MCAST_LISTEN"},
		{"pid no check", "skip-ns-check", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}, "no acknowledgement of PROC_CN_MCAST_LISTEN"},
		{"net", "start", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}, "only in the initial network namespace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reason := tt.reason
			if tt.mode == "skip-ns-check" && !proctest.JoinsProcConnector(t, nil, tt.attr) {
				reason = "needs CAP_NET_ADMIN"
			}
			line := helper(t, tt.mode, nil, tt.attr)
			if !strings.HasPrefix(line, "unavailable: ") || !strings.Contains(line, reason) {
				t.Errorf("got %q, want unavailable: ...%s...", line, reason)
			}
		})
	}
}

// settle waits until the number of goroutines is at most n.
func settle(n int) int {
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

func TestClose(t *testing.T) {
	proctest.RequireRoot(t, "the proc connector")
	before := runtime.NumGoroutine()

	src := New(Config{})
	if err := src.Close(); err != nil { // before Start: nothing to do
		t.Errorf("Close before Start: %v", err)
	}
	if err := src.Start(context.Background(), newRecorder()); err == nil || errors.Is(err, methods.ErrUnavailable) {
		t.Errorf("Start after Close: %v, want an error that is not ErrUnavailable", err)
	}

	sink := newRecorder()
	src = New(Config{})
	if err := src.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background(), sink); err == nil {
		t.Error("second Start: no error")
	}
	pid := run(t, "/bin/true")
	want(t, sink, process.EventExit, pid)
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-src.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if err := src.Err(); err != nil {
		t.Errorf("Err after Close: %v", err)
	}
	evs, _ := sink.Snapshot()
	run(t, "/bin/true")
	time.Sleep(50 * time.Millisecond)
	if now, _ := sink.Snapshot(); len(now) != len(evs) {
		t.Errorf("events delivered after Close")
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := src.Start(context.Background(), sink); err == nil {
		t.Error("Start after Close: no error")
	}
	if after := settle(before); after > before {
		t.Errorf("%d goroutines before, %d after Close", before, after)
	}
}

func TestContextCancel(t *testing.T) {
	proctest.RequireRoot(t, "the proc connector")
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	src := New(Config{})
	if err := src.Start(ctx, newRecorder()); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-src.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the reader did not stop when the context ended")
	}
	if err := src.Err(); err != nil {
		t.Errorf("Err: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
	if after := settle(before); after > before {
		t.Errorf("%d goroutines before, %d after", before, after)
	}

	// A context that has already ended: Start fails.
	if err := New(Config{}).Start(ctx, newRecorder()); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with an ended context: %v", err)
	}
}

// TestConcurrentClose closes from several goroutines while events flow.
func TestConcurrentClose(t *testing.T) {
	proctest.RequireRoot(t, "the proc connector")
	sink := newRecorder()
	src := New(Config{})
	if err := src.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
			if err == nil {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, 0, nil)
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- src.Close() }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	close(stop)
	<-stopped
	t.Logf("stats at close: %+v", src.Stats())
}

// TestWakeupGap: after a read that found messages the reader sleeps
// Config.WakeupGap before it reads again, so an event that follows at
// once is delivered no sooner than the gap after the first; and Close cuts
// a long sleep short.
func TestWakeupGap(t *testing.T) {
	const gap = 300 * time.Millisecond
	rec := newRecorder()
	src := startSourceWith(t, Config{WakeupGap: gap}, rec)
	run := func() int {
		cmd := exec.Command("/bin/true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		return cmd.Process.Pid
	}
	first := run()
	if rec.WaitFor(process.EventExit, first, nil, 5*time.Second) == nil {
		t.Fatal("no exit event of the first process")
	}
	seen := time.Now()
	second := run()
	if rec.WaitFor(process.EventExit, second, nil, 5*time.Second) == nil {
		t.Fatal("no exit event of the second process")
	}
	if d := time.Since(seen); d < gap-50*time.Millisecond {
		t.Errorf("the second exit came %v after the first, within the %v gap", d, gap)
	}

	// A sleep of an hour, cut short by Close.
	long := New(Config{WakeupGap: time.Hour, Logger: src.log})
	if err := long.Start(context.Background(), newRecorder()); err != nil {
		t.Fatal(err)
	}
	run()
	time.Sleep(50 * time.Millisecond) // the reader reads, then sleeps
	start := time.Now()
	if err := long.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}

// TestCycles starts and stops 200 Sources, ending every other one by its
// context: no goroutine or descriptor is left, and a second Start fails
// with methods.ErrClosed.
func TestCycles(t *testing.T) {
	proctest.RequireRoot(t, "the proc connector")
	proctest.CheckCycles(t, 200, func(i int) {
		src := New(Config{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := src.Start(ctx, newRecorder()); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			cancel()
			<-src.Done()
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if err := src.Start(context.Background(), newRecorder()); !errors.Is(err, methods.ErrClosed) {
			t.Fatalf("Start after Close: %v, want methods.ErrClosed", err)
		}
	})
}
