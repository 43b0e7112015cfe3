package process

import (
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

// TestFindProcessLazy: FindProcess leaves the namespaces, root and cgroup
// unread; the accessors read them once, on first use, and copies of the
// Process (which share the read) and concurrent readers see the same
// values, those ReadProcess reads at once.
func TestFindProcessLazy(t *testing.T) {
	c := startChild(t, helperCmd("plain", "lazy"), true)
	p := FindProcess(c.PID, false)
	full := ReadProcess(c.PID)
	if p == nil || full == nil {
		t.Fatalf("FindProcess %v, ReadProcess %v", p, full)
	}
	if p.NS != (Namespaces{}) || p.Root != "" || p.Cgroup != "" || p.Creds.UserNS != 0 {
		t.Errorf("FindProcess read the lazy fields: NS %+v Root %q Cgroup %q", p.NS, p.Root, p.Cgroup)
	}
	if full.NS.Mnt == 0 || full.Root == "" || full.Cgroup == "" || full.Creds.UserNS != full.NS.User {
		t.Fatalf("ReadProcess: NS %+v Root %q Cgroup %q UserNS %d", full.NS, full.Root, full.Cgroup, full.Creds.UserNS)
	}
	if p.Path != full.Path || p.CWD != full.CWD || len(p.Env) != len(full.Env) || p.Creds.EUID != full.Creds.EUID || p.Creds.CapEffective != full.Creds.CapEffective {
		t.Errorf("FindProcess and ReadProcess differ: %q %q %d vs %q %q %d", p.Path, p.CWD, len(p.Env), full.Path, full.CWD, len(full.Env))
	}
	copyOf := *p
	var wg sync.WaitGroup
	got := make([]Namespaces, 8)
	for i := range got {
		wg.Go(func() {
			q := p
			if i%2 == 1 {
				q = &copyOf
			}
			got[i] = q.Namespaces()
			q.RootDir()
			q.CgroupInfo()
		})
	}
	wg.Wait()
	for i, ns := range got {
		if ns != full.NS {
			t.Errorf("reader %d: %+v, want %+v", i, ns, full.NS)
		}
	}
	// Read once: the process is gone now, and the values stay.
	c.Stop()
	cg, id, rt := copyOf.CgroupInfo()
	if p.RootDir() != full.Root || cg != full.Cgroup || id != full.ContainerID || rt != full.ContainerRuntime {
		t.Errorf("after exit: root %q cgroup %q %q %q, want %q %q", p.RootDir(), cg, id, rt, full.Root, full.Cgroup)
	}
	own := copyOf
	own.Complete()
	if own.NS != full.NS || own.Root != full.Root || own.Cgroup != full.Cgroup || own.Creds.UserNS != full.NS.User {
		t.Errorf("Complete: NS %+v Root %q Cgroup %q", own.NS, own.Root, own.Cgroup)
	}
	if p.NS != (Namespaces{}) || copyOf.NS != (Namespaces{}) {
		t.Error("the accessors or Complete of a copy changed the Process")
	}
}

// TestLazyAfterPIDReuse: the lazy details of a process whose pid was taken
// by another before they were asked for are empty, never the other's: a
// process in a mount namespace of its own is found, exits, and its pid goes
// to a process in the host's namespaces.
func TestLazyAfterPIDReuse(t *testing.T) {
	proctest.RequireRoot(t, "changes credentials, chroots, forces pids or reads other users' /proc")
	unshare := proctest.RequireTool(t, "unshare")
	first := startChild(t, exec.Command(unshare, "--mount", "--propagation", "private", "/bin/sleep", "60"), false)
	proctest.WaitComm(t, first.PID, "/bin/sleep")
	old := FindProcess(first.PID, false)
	if old == nil {
		t.Fatal("nil")
	}
	first.Stop()
	time.Sleep(30 * time.Millisecond) // a start time in another 10 ms tick: another Key
	fresh := forcePID(t, first.PID, func() *exec.Cmd { return helperCmd("plain", "fresh") })
	if k, err := CurrentKey(fresh.PID); err != nil || k == old.Key() {
		t.Fatalf("pid %d not reused by a new process: %v %v", fresh.PID, k, err)
	}
	if ns := old.Namespaces(); ns != (Namespaces{}) {
		t.Errorf("namespaces of the pid's new process: %+v", ns)
	}
	if cg, _, _ := old.CgroupInfo(); cg != "" || old.RootDir() != "" {
		t.Errorf("cgroup %q root %q of the pid's new process", cg, old.RootDir())
	}
}
