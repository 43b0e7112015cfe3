package netlink

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// run runs a command to completion and returns its pid.
func run(t *testing.T, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %v: %v: %s", name, args, err, out)
		}
	}
	return cmd.Process.Pid
}

// want waits for an event of kind about pid and fails without one.
func want(t *testing.T, sink *recorder, kind process.EventKind, pid int) *process.Event {
	t.Helper()
	ev := sink.WaitFor(kind, pid, nil, 5*time.Second)
	if ev == nil {
		t.Fatalf("no %v event for pid %d", kind, pid)
	}
	if ev.Method != process.MethodNetlink || ev.Process != nil {
		t.Errorf("%v event: method %q, process %v", kind, ev.Method, ev.Process)
	}
	return ev
}

func TestForkExecExitValues(t *testing.T) {
	sink := newRecorder()
	startSource(t, sink)
	before := time.Now()
	pid := run(t, "sh", "-c", "exit 3")
	after := time.Now()

	fork := want(t, sink, process.EventFork, pid)
	if fork.TID != pid || fork.PPID != syscall.Getpid() {
		t.Errorf("fork: %+v, want tid %d ppid %d", fork, pid, syscall.Getpid())
	}
	exe := want(t, sink, process.EventExec, pid)
	if exe.TID != pid {
		t.Errorf("exec: %+v", exe)
	}
	exit := want(t, sink, process.EventExit, pid)
	if exit.ExitCode != 3<<8 {
		t.Errorf("exit code %#x, want %#x (wait status of exit(3))", exit.ExitCode, 3<<8)
	}
	// Times come from CLOCK_MONOTONIC shifted to the wall clock.
	for _, ev := range []*process.Event{fork, exe, exit} {
		if ev.Time.Before(before.Add(-50*time.Millisecond)) || ev.Time.After(after.Add(50*time.Millisecond)) {
			t.Errorf("%v at %v, not within [%v, %v]", ev.Kind, ev.Time, before, after)
		}
	}
	if !(fork.Time.Compare(exe.Time) <= 0 && exe.Time.Compare(exit.Time) <= 0) {
		t.Errorf("times out of order: fork %v exec %v exit %v", fork.Time, exe.Time, exit.Time)
	}

	// Killed by a signal: the wait status is the signal number.
	cmd := exec.Command("sleep", "10")
	c := proctest.Start(t, cmd)
	want(t, sink, process.EventExec, c.PID)
	c.Stop()
	if exit := want(t, sink, process.EventExit, c.PID); exit.ExitCode != int(syscall.SIGKILL) {
		t.Errorf("killed: exit code %#x, want %#x", exit.ExitCode, int(syscall.SIGKILL))
	}
}

// TestThreadsSkipped checks that thread creation and thread exits are not
// reported as processes: the test binary's own runtime threads are not seen,
// a multi-threaded child yields one fork and one exit.
func TestThreadsSkipped(t *testing.T) {
	sink := newRecorder()
	src := startSource(t, sink)
	// A child that starts threads: the Go test binary itself, in storm
	// mode with a few processes (the runtime starts several threads).
	cmd := exec.Command(testBinary(t))
	cmd.Env = append(cmd.Environ(), stormEnv+"=3")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	pid := cmd.Process.Pid
	want(t, sink, process.EventExit, pid)
	events, _ := sink.Snapshot()
	forks, exits := 0, 0
	for _, ev := range events {
		if ev.PID != pid {
			continue
		}
		switch ev.Kind {
		case process.EventFork:
			forks++
		case process.EventExit:
			exits++
		}
		if ev.TID != ev.PID && ev.Kind != process.EventExec {
			t.Errorf("event of thread %d reported: %+v", ev.TID, ev)
		}
	}
	c := src.Counters()
	t.Logf("child %d: %d fork, %d exit; skipped thread forks %d, thread exits %d", pid, forks, exits, c.ThreadForks, c.ThreadExits)
	if forks != 1 || exits != 1 {
		t.Errorf("%d forks and %d exits reported for pid %d, want 1 and 1", forks, exits, pid)
	}
	if c.ThreadForks == 0 || c.ThreadExits == 0 {
		t.Errorf("no thread skipped: %+v", c)
	}
}

func TestCredCommSidEvents(t *testing.T) {
	setpriv := proctest.RequireTool(t, "setpriv")
	setsid := proctest.RequireTool(t, "setsid")
	sink := newRecorder()
	startSource(t, sink)

	t.Run("uid", func(t *testing.T) {
		pid := run(t, setpriv, "--reuid=1000", "/bin/true")
		ev := want(t, sink, process.EventUID, pid)
		if ev.Creds == nil || ev.Creds.New.UID != 1000 || ev.Creds.New.EUID != 1000 || ev.TID != pid {
			t.Errorf("uid event %+v creds %+v", ev, ev.Creds)
		}
	})
	t.Run("euid", func(t *testing.T) {
		pid := run(t, setpriv, "--euid=1001", "/bin/true")
		ev := want(t, sink, process.EventUID, pid)
		if ev.Creds == nil || ev.Creds.New.UID != 0 || ev.Creds.New.EUID != 1001 {
			t.Errorf("euid event creds %+v", ev.Creds)
		}
	})
	t.Run("gid", func(t *testing.T) {
		pid := run(t, setpriv, "--regid=1002", "--clear-groups", "/bin/true")
		ev := want(t, sink, process.EventGID, pid)
		if ev.Creds == nil || ev.Creds.New.GID != 1002 || ev.Creds.New.EGID != 1002 {
			t.Errorf("gid event creds %+v", ev.Creds)
		}
	})
	t.Run("comm", func(t *testing.T) {
		pid := run(t, "sh", "-c", "printf renamed-process-long > /proc/self/comm")
		ev := want(t, sink, process.EventComm, pid)
		if ev.Comm != "renamed-process" { // cut to 15 bytes by the kernel
			t.Errorf("comm event %q", ev.Comm)
		}
	})
	t.Run("sid", func(t *testing.T) {
		// Started by Go, the child is not a process group leader, so
		// setsid(1) calls setsid(2) itself without forking.
		pid := run(t, setsid, "/bin/true")
		want(t, sink, process.EventSID, pid)
	})
	t.Run("ptrace", func(t *testing.T) {
		strace := proctest.RequireTool(t, "strace")
		pid := run(t, strace, "-o", "/dev/null", "/bin/true")
		// strace forks the tracee and attaches to it: find the child.
		events, _ := sink.Snapshot()
		var child int
		for _, ev := range events {
			if ev.Kind == process.EventFork && ev.PPID == pid {
				child = ev.PID
			}
		}
		if child == 0 {
			t.Fatalf("no fork of strace %d seen", pid)
		}
		ev := want(t, sink, process.EventPtrace, child)
		if ev.Tracer != pid {
			t.Errorf("ptrace event %+v, want tracer %d", ev, pid)
		}
	})
	t.Run("coredump", func(t *testing.T) {
		// The connector reports a core dump as soon as one starts, even
		// when RLIMIT_CORE is 0 and no file is written.
		pid := run(t, "sh", "-c", "ulimit -c 0; kill -SEGV $$")
		ev := sink.WaitFor(process.EventCoredump, pid, nil, 2*time.Second)
		if ev == nil {
			t.Skipf("no coredump event for pid %d (the kernel did not start a dump)", pid)
		}
		if ev.TID != pid {
			t.Errorf("coredump event %+v", ev)
		}
		if exit := want(t, sink, process.EventExit, pid); exit.ExitCode&0x7f != int(syscall.SIGSEGV) {
			t.Errorf("exit code %#x, want SIGSEGV", exit.ExitCode)
		}
	})
	events, losses := sink.Snapshot()
	kinds := map[string]int{}
	for _, ev := range events {
		kinds[ev.Kind.String()]++
	}
	t.Logf("events by kind: %v; losses %v", kinds, strings.Join(losses, ", "))
}
