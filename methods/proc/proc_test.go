package proc

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

type sink struct {
	mu     sync.Mutex
	events []process.Event
}

func (s *sink) Event(ev *process.Event) { s.mu.Lock(); s.events = append(s.events, *ev); s.mu.Unlock() }
func (s *sink) Lost(uint64, string)     {}

func (s *sink) has(kind process.EventKind, pid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.events {
		if ev.Kind == kind && ev.PID == pid {
			return true
		}
	}
	return false
}

func TestScanReportsExecAndExit(t *testing.T) {
	src := New(Config{Interval: 10 * time.Millisecond})
	var k sink
	if err := src.Start(context.Background(), &k); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cmd := exec.Command("/bin/sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	wait(t, func() bool { return k.has(process.EventExec, pid) })
	_ = cmd.Wait()
	wait(t, func() bool { return k.has(process.EventExit, pid) })
	if st := src.Stats(); st.Events == 0 || src.Scans() < 2 {
		t.Errorf("stats %+v scans %d", st, src.Scans())
	}
}

func TestNoProcfs(t *testing.T) {
	err := New(Config{Root: t.TempDir()}).Start(context.Background(), &sink{})
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
