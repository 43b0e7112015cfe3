package procmon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
)

// TestSeedSurface uses the package the way a user of the seed API does.
func TestSeedSurface(t *testing.T) {
	p := FindProcess(os.Getpid(), false)
	if p == nil || p.ID != os.Getpid() || p.Path == "" {
		t.Fatalf("FindProcess(self) = %+v", p)
	}
	EventsCache.Add(p)
	item, found := EventsCache.IsInStoreByPID(p.ID)
	if !found || item.Proc.Key() != p.Key() {
		t.Fatal("EventsCache does not hold the added process")
	}
	if NewProcessWithParent(1<<22+10, 1, "x").PPID != 1 || NewProcessEmpty(10, "x").Comm != "x" { // above pid_max: nothing to read
		t.Error("constructors")
	}
	if q := NewProcess(os.Getpid(), ""); q.Key() != p.Key() {
		t.Errorf("NewProcess key %s, want %s", q.Key(), p.Key())
	}
	for _, m := range []string{MethodEbpf, MethodNetlink, MethodAudit, MethodProc} {
		if m == "" {
			t.Error("empty method name")
		}
	}
	if HashMD5 != "process.hash.md5" || HashIMA != "process.hash.ima" || HashSHA1 != "process.hash.sha1" || KernelConnection != "Kernel connection" || ProcSelf != "/proc/self/" {
		t.Error("seed constants changed")
	}
}

// TestSeedSockets: the seed's socket lookup names this process as the owner
// of a socket it holds.
func TestSeedSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	var inode int
	if _, err := fmt.Sscanf(link, "socket:[%d]", &inode); err != nil {
		t.Fatalf("%q: %v", link, err)
	}
	if pid := GetPIDFromINode(inode, strconv.Itoa(inode)); pid != os.Getpid() {
		t.Errorf("GetPIDFromINode(%d) = %d, want %d", inode, pid, os.Getpid())
	}
}

// TestOpenSnitchMeanings: the seed calls whose meaning OpenSnitch's daemon
// relies on.
func TestOpenSnitchMeanings(t *testing.T) {
	if p := FindProcess(-1, true); p == nil || p.ID != 0 {
		t.Errorf("FindProcess(-1, true) = %+v, want a placeholder with ID 0", p)
	}
	StopMonitor()
	defaultMu.Lock()
	saved := defaultMethod
	defaultMethod = ""
	defaultMu.Unlock()
	t.Cleanup(func() {
		StopMonitor()
		defaultMu.Lock()
		defaultMethod = saved
		defaultMu.Unlock()
	})
	if GetMonitorMethod() != MethodProc || !MethodIsProc() {
		t.Errorf("GetMonitorMethod() before any start = %q, want proc", GetMonitorMethod())
	}
	self, _ := os.Executable()
	for name, p := range map[string]*Process{
		"NewProcess":           NewProcess(os.Getpid(), ""),
		"NewProcessWithParent": NewProcessWithParent(os.Getpid(), os.Getpid(), ""),
	} {
		if p.Path != self || p.Parent == nil || p.Parent.ID != os.Getppid() || p.Parent.Path == "" ||
			len(p.Tree) == 0 || p.Tree[0].Value != uint32(os.Getppid()) || len(p.Args) == 0 {
			t.Errorf("%s: Path %q Args %q Parent %+v Tree %d items", name, p.Path, p.Args, p.Parent, len(p.Tree))
		}
	}
}
