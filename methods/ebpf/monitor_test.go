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
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
)

// TestWithMonitor runs a procmon Monitor on the eBPF method and checks
// that the cache holds what the kernel reported: the fork's image, the
// exec's image and identity, the exit. (An external test package: procmon
// imports this one.)
func TestWithMonitor(t *testing.T) {
	proctest.RequireRoot(t, "loading BPF programs")
	mon, err := procmon.New(procmon.Config{Method: procmon.MethodEbpf, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	if mon.Method() != procmon.MethodEbpf {
		t.Fatalf("the monitor runs %q, not ebpf: %+v", mon.Method(), mon.Status())
	}
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
			item.ok, item.proc = it.Proc.Path == sleepPath, it.Proc
		}
		// The cache may mark the short process exited (its pid is gone)
		// before the reader hands on its exec: wait for the exec too.
		if it, ok := mon.Cache().IsInStoreByPID(short.Process.Pid); ok && it.Exited != 0 {
			gone.proc, gone.exit = it.Proc, it.Exited
			gone.ok = slices.Equal(it.Proc.Args, []string{"/bin/true", "gone"})
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
	if p.PPID != os.Getpid() || !slices.Equal(p.Args, []string{"sleep", "30"}) || p.CWD == "" || p.Creds.CapEffective == 0 {
		t.Errorf("cached %+v", p)
	}
	if !gone.ok {
		t.Fatalf("the short process is not cached as exited with its arguments: %+v", gone.proc)
	}
	if st := mon.Stats(); st.Incomplete != 0 {
		t.Errorf("monitor stats %+v", st)
	}
}
