package ebpf_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
)

// TestWithMonitor feeds the source's events to a procmon
// Monitor (its Sink) and checks that the cache holds what the kernel
// reported: the fork's image, the exec's image and identity, the exit. (An
// external test package: procmon will import this one.)
func TestWithMonitor(t *testing.T) {
	proctest.RequireRoot(t, "loading BPF programs")
	mon, err := procmon.New(procmon.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	src := ebpf.New(ebpf.Config{Logger: slog.New(slog.DiscardHandler)})
	if err := src.Start(context.Background(), mon); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Drain the monitor's event channel as a consumer would.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-mon.Events():
			case <-stop:
				return
			}
		}
	}()

	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	short := exec.Command("/bin/true", "gone")
	if err := short.Run(); err != nil {
		t.Fatal(err)
	}
	want, err := process.CurrentKey(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	sleepPath, _ := exec.LookPath("sleep")
	sleepPath, _ = filepath.EvalSymlinks(sleepPath)
	var item, gone struct {
		ok   bool
		proc *process.Process
		exit int64
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if it, ok := mon.Cache().Get(want); ok {
			it.Proc.RLock()
			item.ok, item.proc = it.Proc.Path == sleepPath, it.Proc
			it.Proc.RUnlock()
		}
		if it, ok := mon.Cache().IsInStoreByPID(short.Process.Pid); ok && it.Exited != 0 {
			gone.ok, gone.proc, gone.exit = true, it.Proc, it.Exited
		}
		if item.ok && gone.ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !item.ok {
		t.Fatalf("sleep (%v) not cached with its path", want)
	}
	p := item.proc
	p.RLock()
	if p.PPID != os.Getpid() || !slices.Equal(p.Args, []string{"sleep", "30"}) || p.CWD == "" || p.Creds.CapEffective == 0 {
		t.Errorf("cached %+v", p)
	}
	p.RUnlock()
	if !gone.ok {
		t.Fatal("the short process is not cached as exited")
	}
	gone.proc.RLock()
	if !slices.Equal(gone.proc.Args, []string{"/bin/true", "gone"}) {
		t.Errorf("exited process %+v", gone.proc)
	}
	gone.proc.RUnlock()
	if st := mon.Stats(); st.Incomplete != 0 {
		t.Errorf("monitor stats %+v", st)
	}
}
