package exits

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/internal/proctest"
)

// probeEnv makes the test binary, run by RunWithoutCaps, print what Start
// says instead of running tests.
const probeEnv = "PROCTRACK_EXITS_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) != "" {
		c := New()
		err := c.Start(context.Background())
		fmt.Printf("unavailable=%v gen=%d err=%v\n", errors.Is(err, ErrUnavailable), c.Gen(os.Getpid()), err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// started returns a running Counter, closed at the end of t.
func started(t *testing.T) *Counter {
	t.Helper()
	proctest.RequireRoot(t, "loading the exit counter")
	c := New()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func startTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	s, _, err := procfs.ReadStat(procfs.DefaultRoot, pid)
	if err != nil {
		t.Fatal(err)
	}
	return s.StartTicks
}

func sleeper() *exec.Cmd { return exec.Command("sleep", "60") }

// TestExitChangesGen: a recorded generation holds while the process runs
// and changes when it exits.
func TestExitChangesGen(t *testing.T) {
	c := started(t)
	child := proctest.Start(t, sleeper())
	g := c.Confirm(child.PID, startTicks(t, child.PID))
	if g == 0 {
		t.Fatal("Confirm of a running child: 0")
	}
	time.Sleep(10 * time.Millisecond)
	if now := c.Gen(child.PID); now != g {
		t.Logf("the slot changed while the child ran (another task of the slot exited): %d -> %d", g, now)
	}
	child.Stop()
	if now := c.Gen(child.PID); now == g {
		t.Errorf("Gen(%d) = %d after the child exited, the value recorded while it ran", child.PID, now)
	}
}

// TestReusedPIDChangesGen: a pid forced onto a new process never shows the
// generation recorded for the old one.
func TestReusedPIDChangesGen(t *testing.T) {
	c := started(t)
	old := proctest.Start(t, sleeper())
	pid := old.PID
	g := c.Confirm(pid, startTicks(t, pid))
	if g == 0 {
		t.Fatal("Confirm of a running child: 0")
	}
	time.Sleep(20 * time.Millisecond) // another clock tick: a different identity
	old.Stop()
	neu := proctest.ForcePID(t, pid, sleeper)
	defer neu.Stop()
	if now := c.Gen(pid); now == g {
		t.Fatalf("pid %d reused: Gen still %d", pid, g)
	}
	if c.Confirm(pid, startTicks(t, pid)) == 0 {
		t.Error("Confirm of the new process: 0")
	}
}

// TestConfirmRefuses: another start time, a zombie and a gone pid are not
// confirmed.
func TestConfirmRefuses(t *testing.T) {
	c := started(t)
	cmd := sleeper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	start := startTicks(t, pid)
	if c.Confirm(pid, start+1) != 0 {
		t.Error("Confirm with another start time")
	}
	_ = cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _, err := procfs.ReadStat(procfs.DefaultRoot, pid)
		if err == nil && s.State == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became a zombie: %v", pid, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c.Confirm(pid, start) != 0 {
		t.Error("Confirm of a zombie")
	}
	_ = cmd.Wait()
	if c.Confirm(pid, start) != 0 {
		t.Error("Confirm of a reaped pid")
	}
}

// TestShared: Counters share one program; closing one leaves the other
// counting; a closed Counter's Gen is 0.
func TestShared(t *testing.T) {
	a := started(t)
	b := started(t)
	if a.prog.Load() != b.prog.Load() {
		t.Error("two programs loaded")
	}
	_ = a.Close()
	if a.Gen(1) != 0 {
		t.Error("Gen of a closed Counter is not 0")
	}
	child := proctest.Start(t, sleeper())
	g := b.Confirm(child.PID, startTicks(t, child.PID))
	child.Stop()
	if g == 0 || b.Gen(child.PID) == g {
		t.Errorf("the remaining Counter does not count: recorded %d, now %d", g, b.Gen(child.PID))
	}
	if err := a.Start(context.Background()); err == nil {
		t.Error("Start after Close: nil error")
	}
}

// TestEpochs: a value recorded under one load never matches one read under
// the next (exits between them were not counted).
func TestEpochs(t *testing.T) {
	proctest.RequireRoot(t, "loading the exit counter")
	a := New()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := a.Gen(os.Getpid())
	_ = a.Close()
	b := started(t)
	if b.Gen(os.Getpid()) == g {
		t.Errorf("a new load gives the old value %d", g)
	}
}

// TestUnavailableWithoutCaps: without CAP_BPF, CAP_PERFMON and
// CAP_SYS_ADMIN, Start's error matches ErrUnavailable and Gen is 0.
func TestUnavailableWithoutCaps(t *testing.T) {
	out := proctest.RunWithoutCaps(t, "-bpf,-perfmon,-sys_admin", probeEnv+"=1")
	t.Log(out)
	if want := "unavailable=true gen=0 "; len(out) < len(want) || out[:len(want)] != want {
		t.Errorf("without privileges: %q, want it to start with %q", out, want)
	}
}

// TestCycles: 200 Start/Close cycles (Close, and the context's end) leak no
// goroutine and no descriptor.
func TestCycles(t *testing.T) {
	proctest.RequireRoot(t, "loading the exit counter")
	proctest.CheckCycles(t, 200, func(i int) {
		c := New()
		ctx, cancel := context.WithCancel(context.Background())
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if c.Gen(os.Getpid()) == 0 {
			t.Fatal("Gen 0 while running")
		}
		if i%2 == 0 {
			_ = c.Close()
		} else {
			cancel()
			<-c.run.Done()
		}
		cancel()
		if c.Gen(os.Getpid()) != 0 {
			t.Fatal("Gen after the end")
		}
	})
}

// BenchmarkGen: one read of the mapped counter.
func BenchmarkGen(b *testing.B) {
	proctest.RequireRoot(b, "loading the exit counter")
	c := New()
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pid := os.Getpid()
	for b.Loop() {
		if c.Gen(pid) == 0 {
			b.Fatal("0")
		}
	}
}
