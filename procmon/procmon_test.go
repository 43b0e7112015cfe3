package procmon

import (
	"os"
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
	if NewProcessWithParent(10, 1, "x").PPID != 1 || NewProcessEmpty(10, "x").Comm != "x" {
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
	if HashMD5 != "process.hash.md5" || HashSHA1 != "process.hash.sha1" || KernelConnection != "Kernel connection" || ProcSelf != "/proc/self/" {
		t.Error("seed constants changed")
	}
}
