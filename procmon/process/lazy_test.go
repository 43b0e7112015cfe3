package process

import (
	"os/exec"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

// TestFindProcessLazy: FindProcess leaves the credentials, namespaces,
// root, cgroup and the binary's file unread; the accessors read them once,
// on first use, and copies of the Process (which share the read) and
// concurrent readers see the same values, those ReadProcess reads at once.
func TestFindProcessLazy(t *testing.T) {
	c := startChild(t, helperCmd("plain", "lazy"), true)
	p := FindProcess(c.PID, false)
	full := ReadProcess(c.PID)
	if p == nil || full == nil {
		t.Fatalf("FindProcess %v, ReadProcess %v", p, full)
	}
	if p.NS != (Namespaces{}) || p.Root != "" || p.Cgroup != "" || !reflect.DeepEqual(p.Creds, Credentials{}) || p.UID != 0 ||
		p.ExeInode != 0 || p.ExeDev != 0 || p.RealPath != p.Path {
		t.Errorf("FindProcess read the lazy fields: NS %+v Root %q Cgroup %q Creds %+v UID %d exe %d:%d RealPath %q",
			p.NS, p.Root, p.Cgroup, p.Creds, p.UID, p.ExeDev, p.ExeInode, p.RealPath)
	}
	if full.NS.Mnt == 0 || full.Root == "" || full.Cgroup == "" || full.Creds.UserNS != full.NS.User ||
		full.Creds.CapBounding == 0 || full.ExeInode == 0 {
		t.Fatalf("ReadProcess: NS %+v Root %q Cgroup %q Creds %+v exe inode %d", full.NS, full.Root, full.Cgroup, full.Creds, full.ExeInode)
	}
	if p.Path != full.Path || p.CWD != full.CWD || !reflect.DeepEqual(p.Env, full.Env) || !reflect.DeepEqual(p.Args, full.Args) ||
		p.Key() != full.Key() || p.PPID != full.PPID || p.Comm != full.Comm {
		t.Errorf("FindProcess and ReadProcess differ: %q %q %d vs %q %q %d", p.Path, p.CWD, len(p.Env), full.Path, full.CWD, len(full.Env))
	}
	if c, ok := p.Credentials(); !ok || !reflect.DeepEqual(c, full.Creds) {
		t.Errorf("Credentials %+v %v, want %+v", c, ok, full.Creds)
	}
	if rp, dev, ino := p.ExeFile(); rp != full.RealPath || dev != full.ExeDev || ino != full.ExeInode {
		t.Errorf("ExeFile %q %d %d, want %q %d %d", rp, dev, ino, full.RealPath, full.ExeDev, full.ExeInode)
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
			q.Credentials()
			q.ExeFile()
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
	if c, ok := copyOf.Credentials(); !ok || c.EUID != full.Creds.EUID || c.UserNS != full.NS.User {
		t.Errorf("after exit: Credentials %+v %v", c, ok)
	}
	own := copyOf
	own.Complete()
	if own.NS != full.NS || own.Root != full.Root || own.Cgroup != full.Cgroup || !reflect.DeepEqual(own.Creds, full.Creds) ||
		own.UID != full.UID || own.RealPath != full.RealPath || own.ExeInode != full.ExeInode || own.Incomplete {
		t.Errorf("Complete: NS %+v Root %q Cgroup %q Creds %+v UID %d Incomplete %v", own.NS, own.Root, own.Cgroup, own.Creds, own.UID, own.Incomplete)
	}
	if p.NS != (Namespaces{}) || copyOf.NS != (Namespaces{}) || p.UID != 0 || copyOf.ExeInode != 0 {
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
	if c, ok := old.Credentials(); ok {
		t.Errorf("credentials of the pid's new process: %+v", c)
	}
	if rp, dev, ino := old.ExeFile(); rp != old.Path || dev != 0 || ino != 0 {
		t.Errorf("binary of the pid's new process: %q %d:%d", rp, dev, ino)
	}
	own := *old
	if own.Complete(); !own.Incomplete || own.UID != 0 {
		t.Errorf("Complete after the pid was reused: Incomplete %v UID %d", own.Incomplete, own.UID)
	}
}
