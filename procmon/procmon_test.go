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
