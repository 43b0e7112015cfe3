package procmon

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/cache"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/sockets"
)

// reuseCount is how many forced pid reuses TestPIDReuse makes per method;
// the README's figures are measured with -reuse.count=50.
var reuseCount = flag.Int("reuse.count", len(reuseLookups), "forced pid reuses per method in TestPIDReuse (each checks one lookup, in turn)")

// nsLastPID is where the kernel keeps the last pid it gave out in this pid
// namespace: writing pid-1 makes pid the next one (as CRIU restores).
const nsLastPID = "/proc/sys/kernel/ns_last_pid"

// minAge is how long a test lets a process live before it forces its pid
// on another: two processes started within one clock tick (10 ms) with the
// same pid have the same identity (pid, start ticks), and nothing can tell
// them apart. The kernel reuses a pid that fast only when forced.
const minAge = 30 * time.Millisecond

// killAged kills c (SIGKILL) once it has lived minAge.
func killAged(c *proctest.Child, started time.Time) {
	time.Sleep(time.Until(started.Add(minAge)))
	c.Stop()
}

// startAtPID starts the command mk makes with pid: it sets ns_last_pid to
// pid-1 just before the fork and tries again while another fork on the
// machine takes the pid first. It returns nil when another process holds
// the pid (a fork elsewhere won the race and lives on) or the pid could
// not be had in 500 tries. It skips the test where ns_last_pid cannot be
// written.
func startAtPID(t *testing.T, pid int, mk func() *exec.Cmd) *proctest.Child {
	t.Helper()
	proctest.RequireRoot(t, "forcing a pid through "+nsLastPID)
	for try := 0; try < 500; try++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			return nil // taken
		}
		cmd := mk()
		if err := os.WriteFile(nsLastPID, []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot force a pid: %v", err)
		}
		c := proctest.Start(t, cmd)
		if c.PID == pid {
			return c
		}
		c.Stop()
	}
	return nil
}

// mustStartAtPID is startAtPID failing the test when the pid cannot be had.
func mustStartAtPID(t *testing.T, pid int, mk func() *exec.Cmd) *proctest.Child {
	t.Helper()
	c := startAtPID(t, pid, mk)
	if c == nil {
		t.Fatalf("could not start a process with pid %d: another process took it", pid)
	}
	return c
}

// udpFile returns a UDP socket bound to a loopback port as a file for a
// child (the test's own descriptor is closed: the child is its only
// owner once started and the file closed), with its address and inode.
func udpFile(t *testing.T) (*os.File, netip.AddrPort, uint64) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f, err := conn.File()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return f, conn.LocalAddr().(*net.UDPAddr).AddrPort(), st.Ino
}

// TestAuditExecAfterPIDReuse: audit reports no exit for a process killed by
// a signal, so the cache still holds it as live when the next process with
// its pid execs. The exec must go to the new process's own identity, and
// the old entry be marked exited with its own image. Before the fix the
// exec took the cached process's identity: the old key was shown with the
// new binary's path and the new key was never cached.
func TestAuditExecAfterPIDReuse(t *testing.T) {
	sleep, cat := proctest.RequireTool(t, "sleep"), proctest.RequireTool(t, "cat")
	src := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, src)
	m, _ := startMonitor(t, Config{Method: MethodAudit})
	self := os.Getpid()

	born := time.Now()
	old := proctest.Start(t, exec.Command(sleep, "30"))
	proctest.WaitComm(t, old.PID, sleep)
	oldKey, err := process.CurrentKey(old.PID)
	if err != nil {
		t.Fatal(err)
	}
	img := process.NewProcessEmpty(old.PID, "sleep")
	img.Path, img.PPID = sleep, self
	src.sink.Event(&process.Event{Kind: process.EventExec, PID: old.PID, Process: img, Method: MethodAudit})
	if it, ok := m.Cache().Get(oldKey); !ok || pathOf(it.Proc) != sleep {
		t.Fatalf("the exec of %v was not cached: %+v", oldKey, it)
	}
	killAged(old, born) // SIGKILL: audit reports no exit

	reused := mustStartAtPID(t, old.PID, func() *exec.Cmd { return exec.Command(cat) })
	proctest.WaitComm(t, reused.PID, cat)
	newKey, err := process.CurrentKey(reused.PID)
	if err != nil {
		t.Fatal(err)
	}
	img = process.NewProcessEmpty(reused.PID, "cat")
	img.Path, img.PPID = cat, self
	src.sink.Event(&process.Event{Kind: process.EventExec, PID: reused.PID, Process: img, Method: MethodAudit})

	if it, ok := m.Cache().Get(oldKey); !ok || pathOf(it.Proc) != sleep || it.Exited == 0 {
		t.Errorf("old process %v: found %v, path %q, exited %v; want %s, exited", oldKey, ok, pathOf(it.Proc), it.Exited != 0, sleep)
	}
	if it, ok := m.Cache().Get(newKey); !ok || pathOf(it.Proc) != cat {
		t.Errorf("new process %v: found %v; want it cached with %s", newKey, ok, cat)
	}
	if it, ok := m.Cache().Peek(reused.PID); !ok || it.Proc.Key() != newKey {
		t.Errorf("the cache names pid %d as %v (found %v), want %v", reused.PID, it.Proc, ok, newKey)
	}
}

// TestAuditLateExecAfterPIDReuse: an exec handled after its process was
// killed and its pid taken by a process born later belongs to the cached
// process, not to the one /proc now shows.
func TestAuditLateExecAfterPIDReuse(t *testing.T) {
	sleep, cat := proctest.RequireTool(t, "sleep"), proctest.RequireTool(t, "cat")
	src := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, src)
	m, _ := startMonitor(t, Config{Method: MethodAudit})
	self := os.Getpid()

	old := proctest.Start(t, exec.Command(sleep, "30"))
	proctest.WaitComm(t, old.PID, sleep)
	src.sink.Event(&process.Event{Kind: process.EventFork, PID: old.PID, PPID: self})
	oldKey, err := process.CurrentKey(old.PID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { _, ok := m.Cache().Get(oldKey); return ok })
	execAt := time.Now()
	time.Sleep(100 * time.Millisecond) // the next process is born well after the exec
	old.Stop()
	reused := mustStartAtPID(t, old.PID, func() *exec.Cmd { return exec.Command(cat) })
	newKey, err := process.CurrentKey(reused.PID)
	if err != nil {
		t.Fatal(err)
	}

	img := process.NewProcessEmpty(old.PID, "sleep")
	img.Path, img.PPID = sleep, self
	src.sink.Event(&process.Event{Kind: process.EventExec, PID: old.PID, Process: img, Time: execAt, Method: MethodAudit})
	if it, ok := m.Cache().Get(oldKey); !ok || pathOf(it.Proc) != sleep {
		t.Errorf("the late exec did not reach the old process %v: %+v", oldKey, it.Proc)
	}
	if it, ok := m.Cache().Get(newKey); ok && pathOf(it.Proc) == sleep {
		t.Errorf("the new process %v was given the old process's exec", newKey)
	}
}

// reuseLookups are the lookups TestPIDReuse checks, as its subtests name them.
var reuseLookups = []string{"CacheByPID", "CacheByKey", "FindProcess", "PIDOfInode", "Lookup", "GetPIDFromINode"}

// reuseDelays are when TestPIDReuse looks, after the new process started.
var reuseDelays = []time.Duration{0, 5 * time.Millisecond, 50 * time.Millisecond, 500 * time.Millisecond}

// reuseTally counts the answers of one lookup.
type reuseTally struct {
	checks, right, misses int
	wrongAt               [4]int // by reuseDelays
	wrong                 []string
}

// TestPIDReuse forces pid reuse under every method that starts here: a
// process holding a socket is killed with SIGKILL and a process of another
// binary, holding another socket, is started with the same pid (through
// ns_last_pid). At 0, 5, 50 and 500 ms after, a lookup must not name the
// old process for the new one nor the new for the old: the process cache by
// pid (IsInStoreByPID) and by key (Get), FindProcess, the socket
// resolver's PIDOfInode of the old, closed socket, Lookup of both sockets,
// and the seed's GetPIDFromINode of the old socket (on the same resolver,
// installed as sockets.Default). Where BPF runs (root here), the cache and
// the resolver confirm pids with the kernel's exit counter (issue 15). Lookups repair the cache as they go (a resolver that finds an
// owner gone marks it exited), so each reuse checks one lookup, in turn. A
// miss is fine; a wrong answer fails the lookup's subtest
// (TestPIDReuse/<method>/<lookup>).
func TestPIDReuse(t *testing.T) {
	sleep, cat := proctest.RequireTool(t, "sleep"), proctest.RequireTool(t, "cat")
	proctest.RequireRoot(t, "forcing pids through "+nsLastPID+" and the privileged methods")
	for _, method := range Methods {
		t.Run(method, func(t *testing.T) {
			m, err := New(Config{Method: method})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Start(context.Background()); err != nil {
				t.Skipf("%s cannot run here: %v", method, err)
			}
			c := collect(m)
			defer func() { m.Close(); <-c.done }()
			if m.Method() != method {
				t.Skipf("%s cannot run here: %+v", method, m.Status())
			}
			r := sockets.New(sockets.Config{Cache: m.Cache()})
			if err := r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			prev := sockets.Default()
			sockets.SetDefault(r)
			defer sockets.SetDefault(prev)
			tally := map[string]*reuseTally{}
			for _, l := range reuseLookups {
				tally[l] = &reuseTally{}
			}
			for i, skipped := 0, 0; i < *reuseCount; {
				l := reuseLookups[i%len(reuseLookups)]
				if reuseOnce(t, m, r, sleep, cat, l, tally[l]) {
					i++
					continue
				}
				// Another process took the pid first: not a reuse.
				if skipped++; skipped > *reuseCount {
					t.Fatalf("%d reuses could not be forced", skipped)
				}
			}
			for _, l := range reuseLookups {
				n := tally[l]
				t.Logf("%s: %d answers, %d right, %d misses, %d wrong (by delay %v: %v)", l, n.checks, n.right, n.misses, len(n.wrong), reuseDelays, n.wrongAt)
			}
			for _, l := range reuseLookups {
				t.Run(l, func(t *testing.T) {
					for _, w := range tally[l].wrong {
						t.Error(w)
					}
				})
			}
		})
	}
}

// reuseOnce runs one forced reuse and checks one lookup at each delay. It
// returns false when another process took the pid before it could be
// forced (nothing is counted then).
func reuseOnce(t *testing.T, m *Monitor, r *sockets.Resolver, oldBin, newBin, lookup string, n *reuseTally) bool {
	oldFile, oldAddr, oldInode := udpFile(t)
	oldCmd := exec.Command(oldBin, "30")
	oldCmd.ExtraFiles = []*os.File{oldFile}
	born := time.Now()
	old := proctest.Start(t, oldCmd)
	oldFile.Close()
	proctest.WaitComm(t, old.PID, oldBin)
	oldKey, err := process.CurrentKey(old.PID)
	if err != nil {
		t.Fatal(err)
	}
	// The dangerous case: the old process is cached, and the resolver has
	// named its socket.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if it, ok := m.Cache().Get(oldKey); ok && pathOf(it.Proc) == oldBin {
			break
		}
	}
	remote := netip.MustParseAddrPort("127.0.0.1:9")
	if pid, ok := r.PIDOfInode(oldInode); !ok || pid != old.PID {
		t.Logf("PIDOfInode of the live old socket: %d %v, want %d", pid, ok, old.PID)
	}
	_, _, _ = r.Lookup(sockets.UDP, oldAddr, remote)
	seedKey := fmt.Sprint(oldInode, oldAddr, remote)
	if got := sockets.GetPIDFromINode(int(oldInode), seedKey); got != old.PID {
		t.Logf("GetPIDFromINode of the live old socket: %d, want %d", got, old.PID)
	}
	killAged(old, born) // SIGKILL

	newFile, newAddr, _ := udpFile(t)
	reused := startAtPID(t, old.PID, func() *exec.Cmd {
		cmd := exec.Command(newBin)
		cmd.ExtraFiles = []*os.File{newFile}
		return cmd
	})
	newFile.Close()
	if reused == nil {
		t.Logf("pid %d was taken by another process before it could be forced", old.PID)
		return false
	}
	defer reused.Stop()
	start := time.Now()
	newKey, err := process.CurrentKey(reused.PID)
	if err != nil {
		t.Fatal(err)
	}
	pid := old.PID

	// judge records one answer: p is the process the lookup named for the
	// old (forOld) or the new process; nil is a miss.
	judge := func(i int, forOld bool, p *process.Process) {
		d := reuseDelays[i]
		n.checks++
		if p == nil {
			n.misses++
			return
		}
		k, path := p.Key(), p.Path
		var wrong bool
		if forOld {
			wrong = k == newKey || (k == oldKey && path == newBin)
		} else {
			wrong = k == oldKey || (k == newKey && path == oldBin)
		}
		if !wrong {
			n.right++
			return
		}
		n.wrongAt[i]++
		who := "new"
		if forOld {
			who = "old"
		}
		n.wrong = append(n.wrong, fmt.Sprintf("at %v, for the %s process (old %v %s, new %v %s): %v %s",
			d, who, oldKey, oldBin, newKey, newBin, k, path))
	}
	for d := range reuseDelays {
		time.Sleep(time.Until(start.Add(reuseDelays[d])))
		switch lookup {
		case "CacheByPID":
			it, ok := m.Cache().IsInStoreByPID(pid)
			judge(d, false, procOf(it, ok))
		case "CacheByKey":
			it, ok := m.Cache().Get(oldKey)
			judge(d, true, procOf(it, ok))
			it, ok = m.Cache().Get(newKey)
			judge(d, false, procOf(it, ok))
		case "FindProcess":
			judge(d, false, FindProcess(pid, false))
		case "PIDOfInode":
			var p *process.Process
			if got, ok := r.PIDOfInode(oldInode); ok && got == pid {
				// The pid names the new process now: an answer for
				// the old socket names it.
				p = process.NewProcessEmpty(pid, "")
				p.Starttime = int64(newKey.StartTicks)
			}
			judge(d, true, p)
		case "GetPIDFromINode":
			var p *process.Process
			if sockets.GetPIDFromINode(int(oldInode), seedKey) == pid {
				p = process.NewProcessEmpty(pid, "")
				p.Starttime = int64(newKey.StartTicks)
			}
			judge(d, true, p)
		case "Lookup":
			p, _, _ := r.Lookup(sockets.UDP, newAddr, remote)
			judge(d, false, p)
			p, _, _ = r.Lookup(sockets.UDP, oldAddr, remote)
			judge(d, true, p)
		}
	}
	return true
}

// pathOf is p's Path ("" for nil).
func pathOf(p *process.Process) string {
	if p == nil {
		return ""
	}
	return p.Path
}

// procOf is the process of a cache answer, nil for none.
func procOf(it cache.ExecEventItem, ok bool) *process.Process {
	if !ok {
		return nil
	}
	return it.Proc
}
