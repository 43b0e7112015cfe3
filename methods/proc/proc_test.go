package proc

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/internal/sinktest"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

func TestScanReportsExecAndExit(t *testing.T) {
	src := New(Config{Interval: 10 * time.Millisecond})
	k := sinktest.NewRecorder()
	has := func(kind process.EventKind, pid int) bool { return len(k.All(kind, pid)) > 0 }
	if err := src.Start(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cmd := exec.Command("/bin/sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	wait(t, func() bool { return has(process.EventExec, pid) })
	_ = cmd.Wait()
	wait(t, func() bool { return has(process.EventExit, pid) })
	if st := src.Stats(); st.Events == 0 || src.Scans() < 2 {
		t.Errorf("stats %+v scans %d", st, src.Scans())
	}
}

func TestNoProcfs(t *testing.T) {
	err := New(Config{Root: t.TempDir()}).Start(context.Background(), sinktest.NewRecorder())
	if !errors.Is(err, methods.ErrUnavailable) {
		t.Errorf("Start without procfs: %v", err)
	}
}

func wait(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 5s")
}

// TestCycles starts and stops 200 Sources, ending every other one by its
// context: no goroutine or descriptor is left, and a second Start fails
// with methods.ErrClosed.
func TestCycles(t *testing.T) {
	proctest.CheckCycles(t, 200, func(i int) {
		src := New(Config{Interval: time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := src.Start(ctx, sinktest.NewRecorder()); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			cancel()
			<-src.run.Done()
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if err := src.Start(context.Background(), sinktest.NewRecorder()); !errors.Is(err, methods.ErrClosed) {
			t.Fatalf("Start after Close: %v, want methods.ErrClosed", err)
		}
	})
}

// TestForkWithoutExec: a child that has not exec'd (a shell's background
// subshell, which runs its parent's image) is reported as a fork of its
// parent, never as an exec; the children it execs are execs.
func TestForkWithoutExec(t *testing.T) {
	src := New(Config{Interval: 10 * time.Millisecond})
	k := sinktest.NewRecorder()
	if err := src.Start(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c := proctest.Start(t, exec.Command("/bin/sh", "-c", `(while :; do /bin/sleep 0.02; done) >/dev/null 2>&1 & echo "ready $!"; wait`))
	defer c.Stop()
	line, err := c.Out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var sub int
	if _, err := fmt.Sscanf(line, "ready %d", &sub); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	defer syscall.Kill(sub, syscall.SIGKILL) // before c.Stop: the shell waits for it
	ev := k.WaitFor(process.EventFork, sub, nil, 5*time.Second)
	if ev == nil {
		t.Fatalf("no fork event for the subshell %d; its events: %v", sub, k.All(process.EventExec, sub))
	}
	if ev.PPID != c.PID {
		t.Errorf("fork of %d: parent %d, want %d", sub, ev.PPID, c.PID)
	}
	wait(t, func() bool {
		evs, _ := k.Snapshot()
		for _, e := range evs {
			if e.Kind == process.EventExec && e.PPID == sub {
				return true // a sleep the subshell forked and exec'd
			}
		}
		return false
	})
	if execs := k.All(process.EventExec, sub); len(execs) > 0 {
		t.Errorf("the subshell, which never exec'd, reported as %d exec(s)", len(execs))
	}
}

// BenchmarkStormForks: two shell loops fork+exec /bin/true (n execs per
// iteration) while the Source scans every millisecond. A scan that comes
// between a child's fork and its exec sees it running the shell's image:
// reported as a fork ("forks" per 10,000 execs), never as an exec of the
// shell; "execs" is how many of the storm's processes were seen at all.
func BenchmarkStormForks(b *testing.B) {
	const n = 5000
	var forks, execs int
	for b.Loop() {
		src := New(Config{Interval: time.Millisecond})
		k := sinktest.NewRecorder()
		if err := src.Start(context.Background(), k); err != nil {
			b.Fatal(err)
		}
		loop := fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true x; i=$((i+1)); done", n/2)
		shells := []*exec.Cmd{exec.Command("/bin/sh", "-c", loop), exec.Command("/bin/sh", "-c", loop)}
		pids := map[int]bool{}
		for _, c := range shells {
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			pids[c.Process.Pid] = true
		}
		for _, c := range shells {
			_ = c.Wait()
		}
		_ = src.Close()
		evs, _ := k.Snapshot()
		for _, e := range evs {
			if pids[e.PPID] {
				switch e.Kind {
				case process.EventFork:
					forks++
				case process.EventExec:
					execs++
				}
			}
		}
	}
	b.ReportMetric(float64(forks)*10000/float64(b.N*n), "forks/10k-execs")
	b.ReportMetric(float64(execs)*10000/float64(b.N*n), "execs/10k-execs")
}
