package proc

import (
	"context"
	"errors"
	"os/exec"
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
