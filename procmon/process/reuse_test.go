package process

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

// forcePID starts cmd with the given pid by writing pid-1 to
// /proc/sys/kernel/ns_last_pid just before the fork. Another fork on the
// machine can take the pid first, so it retries a few times.
func forcePID(t testing.TB, pid int, mk func() *exec.Cmd) *proctest.Child {
	t.Helper()
	proctest.RequireRoot(t, "changes credentials, chroots, forces pids or reads other users' /proc")
	for try := 0; try < 20; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot set ns_last_pid: %v", err)
		}
		c := startChild(t, mk(), true)
		if c.PID == pid {
			return c
		}
		c.Stop()
	}
	t.Skipf("could not get pid %d back after 20 tries (a busy machine)", pid)
	return nil
}

// TestPIDReuse: a new process on an old pid is a new identity; the old
// Process is not alive, and its details are not refreshed from the new one.
func TestPIDReuse(t *testing.T) {
	first := startChild(t, helperCmd("plain", "first"), true)
	old := FindProcess(first.PID, false)
	if old == nil {
		t.Fatal("nil")
	}
	first.Stop()
	// Start ticks have a 10 ms resolution: a pid reused within the same tick
	// would have the same key (see Key). A natural reuse needs a wrap of the
	// whole pid space, which takes far longer than a tick; a forced one does
	// not, so the test lets a tick pass first.
	time.Sleep(20 * time.Millisecond)
	second := forcePID(t, first.PID, func() *exec.Cmd { return helperCmd("plain", "second") })
	fresh := FindProcess(second.PID, false)
	if fresh == nil {
		t.Fatal("nil")
	}
	if fresh.Key() == old.Key() {
		t.Fatalf("reused pid has the same key %s", fresh.Key())
	}
	if old.IsAlive() {
		t.Error("old process reported alive after its pid was reused")
	}
	if !fresh.IsAlive() {
		t.Error("new process not alive")
	}
	if err := old.GetDetails(); !errors.Is(err, ErrGone) {
		t.Errorf("GetDetails of the old process: %v, want ErrGone", err)
	}
	if old.Args[len(old.Args)-1] != "first" {
		t.Errorf("old process's args were overwritten: %q", old.Args)
	}
	if fresh.Args[len(fresh.Args)-1] != "second" {
		t.Errorf("new process args %q", fresh.Args)
	}
}

// TestVanishingProcesses reads processes that exit while being read: each
// result is either nil or a whole, consistent process; never a panic.
func TestVanishingProcesses(t *testing.T) {
	const n = 200
	var wg sync.WaitGroup
	pids := make(chan int, n)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(pids)
		for i := 0; i < n; i++ {
			cmd := exec.Command("/bin/true")
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			pids <- cmd.Process.Pid
			_ = cmd.Wait()
		}
	}()
	found, incomplete := 0, 0
	for pid := range pids {
		p := FindProcess(pid, false)
		if p == nil {
			continue
		}
		found++
		if p.ID != pid || p.Starttime == 0 {
			t.Errorf("inconsistent process %+v", p)
		}
		if p.Incomplete {
			incomplete++
			t.Errorf("FindProcess returned an incomplete process for %d", pid)
		}
	}
	wg.Wait()
	t.Logf("%d short-lived processes: %d read whole, the rest gone before the read", n, found)
}
