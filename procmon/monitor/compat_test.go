package monitor_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/monitor"
	"github.com/proctrack/proctrack/sockets/netstat"
)

// The test binary doubles as the process whose connection the tests look
// up: with PROCTRACK_CONNECT set it connects there, prints "ready" and
// waits for stdin to close.
func TestMain(m *testing.M) {
	if addr := os.Getenv("PROCTRACK_CONNECT"); addr != "" {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		c.Close()
		return
	}
	os.Exit(m.Run())
}

// TestOpenSnitchCallShapes calls procmon the way OpenSnitch's daemon does
// (its monitor/init.go, activepids.go, conman/connection.go,
// tasks/pidmonitor and rule loader), under every method that runs here, and
// checks that each call means what it means there.
func TestOpenSnitchCallShapes(t *testing.T) {
	for _, method := range procmon.Methods {
		t.Run(method, func(t *testing.T) {
			if method != procmon.MethodProc {
				proctest.RequireRoot(t, "the "+method+" method")
			}
			callShapes(t, method)
		})
	}
}

func callShapes(t *testing.T, method string) {
	exe, err := filepath.EvalSymlinks(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	// The rule loader: checksums are wanted.
	procmon.EventsCache.SetComputeChecksums(true)
	procmon.EventsCache.AddChecksumHash(procmon.HashMD5)

	// The daemon's start: the configured method, then Init.
	procmon.SetMonitorMethod(method)
	running := procmon.Default()
	t.Cleanup(monitor.End)
	if errm := monitor.Init(""); errm.What != monitor.NoError {
		t.Skipf("%s does not run here: %v", method, errm)
	}
	if procmon.GetMonitorMethod() != method || procmon.MethodIsEbpf() != (method == procmon.MethodEbpf) ||
		procmon.MethodIsAudit() != (method == procmon.MethodAudit) || procmon.MethodIsProc() != (method == procmon.MethodProc) {
		t.Fatalf("GetMonitorMethod %q after Init of %s", procmon.GetMonitorMethod(), method)
	}

	// A process connects after the monitor started.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PROCTRACK_CONNECT="+ln.Addr().String())
	child := proctest.Start(t, cmd)
	child.WaitLine(t, "ready")
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	src, dst := conn.RemoteAddr().(*net.TCPAddr), conn.LocalAddr().(*net.TCPAddr)
	pid := child.PID

	// activepids.go: an exec event of pid (the proc connector gives the
	// thread group id as the second argument).
	proc := procmon.NewProcessWithParent(pid, pid, "")
	if proc.Path != exe || proc.Parent == nil || proc.Parent.ID != os.Getpid() || len(proc.Tree) == 0 || proc.Tree[0].Value != uint32(os.Getpid()) {
		t.Fatalf("NewProcessWithParent: Path %q Parent %+v Tree %d items", proc.Path, proc.Parent, len(proc.Tree))
	}
	if item, needsUpdate, found := procmon.EventsCache.IsInStore(pid, proc); found {
		if needsUpdate {
			procmon.EventsCache.Update(&item.Proc, proc)
		}
	} else {
		procmon.EventsCache.Add(proc)
	}

	// conman/connection.go: connection -> inode -> pid -> process.
	entry := &netstat.Entry{Proto: "tcp", SrcIP: src.IP, SrcPort: uint(src.Port), DstIP: dst.IP, DstPort: uint(dst.Port), UserId: -1, INode: -1}
	var inodeList []int
	if !procmon.GetInodeFromNetstat(entry, &inodeList, entry.Proto, entry.SrcIP, entry.SrcPort, entry.DstIP, entry.DstPort) || len(inodeList) == 0 {
		t.Fatalf("GetInodeFromNetstat found no inode for %v -> %v", src, dst)
	}
	if entry.INode != -1 || entry.UserId != -1 {
		t.Errorf("GetInodeFromNetstat changed the caller's entry: %+v", entry)
	}
	found := -1
	for _, inode := range inodeList {
		if found = procmon.GetPIDFromINode(inode, fmt.Sprint(inode, entry.SrcIP, entry.SrcPort, entry.DstIP, entry.DstPort)); found != -1 {
			entry.INode = inode
			break
		}
	}
	if found != pid {
		t.Fatalf("GetPIDFromINode: pid %d, want %d", found, pid)
	}
	p := procmon.FindProcess(found, true)
	if p == nil || p.ID != pid || p.Path != exe {
		t.Fatalf("FindProcess(%d) = %+v", found, p)
	}
	if u := procmon.FindProcess(-1, true); u == nil || u.ID != 0 {
		t.Errorf("FindProcess(-1, true) = %+v, want a placeholder with ID 0", u)
	}
	if procmon.FindProcess(-1, false) != nil {
		t.Error("FindProcess(-1, false) is not nil")
	}

	// The cached process, with its hash and parent.
	want := proctest.CoreutilsSum(t, "md5sum", exe)
	var item procmon.ExecEventItem
	waitFor(t, 10*time.Second, func() bool {
		var ok bool
		item, ok = procmon.EventsCache.IsInStoreByPID(pid)
		return ok && item.Proc.Checksums[procmon.HashMD5] != "" && item.Proc.Parent != nil
	}, func() string { return fmt.Sprintf("cached %+v", &item.Proc) })
	if item.Proc.Path != exe || item.Proc.Checksums[procmon.HashMD5] != want || item.Proc.Parent.ID != os.Getpid() ||
		len(item.Proc.Tree) == 0 || item.Proc.Tree[0].Value != uint32(os.Getpid()) {
		t.Errorf("cached: Path %q md5 %q (want %q) Parent %d Tree %d items", item.Proc.Path,
			item.Proc.Checksums[procmon.HashMD5], want, item.Proc.Parent.ID, len(item.Proc.Tree))
	}

	// tasks/pidmonitor: the cached process, then its extra details, as JSON.
	// The copy is the caller's: changing it leaves the cache alone.
	pm := &item.Proc
	if len(pm.Tree) == 0 {
		pm.GetParent()
		pm.BuildTree()
	}
	if err := pm.GetExtraInfo(); err != nil || pm.Statm == nil || pm.Statm.Size == 0 {
		t.Fatalf("GetExtraInfo of the cached copy: %v, Statm %+v", err, pm.Statm)
	}
	if _, err := json.Marshal(pm); err != nil {
		t.Fatal(err)
	}
	pm.Path = "/changed/by/the/caller"
	if again, _ := procmon.EventsCache.IsInStoreByPID(pid); again.Proc.Path != exe || again.Proc.Statm != nil && again.Proc.Statm == pm.Statm {
		t.Errorf("a change to the copy reached the cache: Path %q", again.Proc.Path)
	}
	if np := procmon.NewProcess(pid, ""); np.Path != exe || np.Parent == nil || np.Parent.ID != os.Getpid() || len(np.Tree) == 0 {
		t.Errorf("NewProcess: Path %q Parent %+v Tree %v", np.Path, np.Parent, np.Tree)
	}

	// activepids.go's Delete of a process that runs keeps it.
	procmon.EventsCache.Delete(os.Getpid())
	if self, ok := procmon.EventsCache.IsInStoreByPID(os.Getpid()); !ok || self.Exited != 0 {
		t.Errorf("Delete of a running process: found %v exited %d", ok, self.Exited)
	}
	// activepids.go: the exit event.
	child.Stop()
	if it, _, ok := procmon.EventsCache.IsInStore(pid, nil); ok && !it.Proc.IsAlive() {
		procmon.EventsCache.Delete(it.Proc.ID)
	}
	if it, ok := procmon.EventsCache.Get(p.Key()); !ok || it.Exited == 0 {
		t.Errorf("exited child: found %v exited %d", ok, it.Exited)
	}

	// monitor.End stops the method, whichever it is; the method set stays.
	monitor.End()
	if running.Method() != "" {
		t.Errorf("%s still runs after End", running.Method())
	}
	if procmon.GetMonitorMethod() != method {
		t.Errorf("GetMonitorMethod %q after End, want %s (the method set)", procmon.GetMonitorMethod(), method)
	}
}

// TestReconfigureMonitorMethod: switching methods, refusing an unknown one
// without stopping the running one.
func TestReconfigureMonitorMethod(t *testing.T) {
	proctest.RequireRoot(t, "the netlink method")
	t.Cleanup(monitor.End)
	procmon.SetMonitorMethod(procmon.MethodProc)
	if errm := monitor.Init(""); errm.What != monitor.NoError {
		t.Fatal(errm)
	}
	if errm := monitor.ReconfigureMonitorMethod(procmon.MethodProc, ""); errm != nil {
		t.Errorf("reconfiguring the running method: %v", errm)
	}
	if errm := monitor.ReconfigureMonitorMethod(procmon.MethodNetlink, ""); errm != nil {
		t.Skipf("netlink does not run here: %v", errm)
	}
	if procmon.GetMonitorMethod() != procmon.MethodNetlink {
		t.Fatalf("running %q, want netlink", procmon.GetMonitorMethod())
	}
	errm := monitor.ReconfigureMonitorMethod("nonsense", "")
	if errm == nil || errm.What != monitor.ProcFsErr || !errors.Is(errm, procmon.ErrUnknownMethod) {
		t.Errorf("unknown method: %v", errm)
	}
	if procmon.Default().Method() != procmon.MethodNetlink {
		t.Errorf("running %q after a refused switch, want netlink", procmon.Default().Method())
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("not within %v: %s", d, what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
