package procmon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// batchEvents feeds evs to a batchSink of a monitor that is not started,
// flushes it as the netlink source does when the socket is drained, and
// returns what it offered.
func batchEvents(t *testing.T, evs ...*process.Event) []Event {
	t.Helper()
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := &batchSink{m: m}
	for _, ev := range evs {
		s.Event(ev)
	}
	s.Flush(true)
	var out []Event
	for len(m.events) > 0 {
		out = append(out, <-m.events)
	}
	if len(out) != len(evs) {
		t.Fatalf("%d events offered, want %d", len(out), len(evs))
	}
	return out
}

// TestBatchForkExec: a fork held until its child's exec in the same batch
// gets the child's identity from the exec's reads; the exec names the
// child and carries its credentials; a fork alone gets its identity at
// Flush. Checked against /proc.
func TestBatchForkExec(t *testing.T) {
	sleep := proctest.RequireTool(t, "sleep")
	c := proctest.Start(t, exec.Command(sleep, "30"))
	defer c.Stop()
	proctest.WaitComm(t, c.PID, sleep)
	r := process.NewReader()
	want, err := r.Identity(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := r.Creds(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := filepath.EvalSymlinks(sleep)
	me := os.Getpid()

	out := batchEvents(t, &process.Event{Kind: process.EventFork, PID: c.PID, PPID: me}, &process.Event{Kind: process.EventExec, PID: c.PID})
	fork, ex := out[0], out[1]
	if fork.Kind != EventFork || fork.Process == nil || fork.Process.Key() != want.Key() || fork.Process.Incomplete {
		t.Fatalf("fork: %v %+v, want the identity %v", fork.Kind, fork.Process, want.Key())
	}
	if ex.Kind != EventExec || ex.Process == nil || ex.Process.Key() != want.Key() {
		t.Fatalf("exec: %v %+v, want the identity %v", ex.Kind, ex.Process, want.Key())
	}
	if ex.Process.Path != bin || !slices.Equal(ex.Process.Args, []string{sleep, "30"}) || ex.Process.PPID != me {
		t.Errorf("exec named %s %q parent %d, want %s %q parent %d", ex.Process.Path, ex.Process.Args, ex.Process.PPID, bin, []string{sleep, "30"}, me)
	}
	if got := ex.Process.Creds; got.EUID != creds.EUID || got.CapEffective != creds.CapEffective || got.CapBounding != creds.CapBounding {
		t.Errorf("exec credentials %+v, want %+v", got, creds)
	}

	out = batchEvents(t, &process.Event{Kind: process.EventFork, PID: c.PID, PPID: me})
	if p := out[0].Process; p == nil || p.Key() != want.Key() {
		t.Fatalf("fork alone: %+v, want the identity %v", p, want.Key())
	}
}

// TestBatchForkAfterPIDReuse: a fork handled after its child exited and
// its pid was taken by a process of another parent (forced through
// ns_last_pid) is never given that process's start time, with its exec in
// the batch or not, and the exec never its image; nor is the exec of the
// pid's cached live process.
func TestBatchForkAfterPIDReuse(t *testing.T) {
	sleep := proctest.RequireTool(t, "sleep")
	sh := proctest.RequireTool(t, "sh")
	proctest.RequireRoot(t, "forcing a pid through "+nsLastPID)
	me := os.Getpid()
	// The new owner of the pid: sleep started by a shell (its parent).
	var pid int
	var other *proctest.Child
	var gone *process.Process // the pid's previous process, as the cache would hold it
	for try := 0; try < 100 && other == nil; try++ {
		a := proctest.Start(t, exec.Command(sleep, "30"))
		pid = a.PID
		proctest.WaitComm(t, pid, sleep)
		gone = process.ReadProcess(pid)
		a.Stop() // killed and reaped: the pid is free
		// A clock tick (10 ms) later, so that the next process of the
		// pid has another start time, hence another identity.
		time.Sleep(20 * time.Millisecond)
		if err := os.WriteFile(nsLastPID, []byte(strconv.Itoa(pid-2)), 0); err != nil {
			t.Skipf("cannot force a pid: %v", err)
		}
		c := proctest.Start(t, exec.Command(sh, "-c", sleep+" 30 </dev/null >/dev/null 2>&1 & echo $!; wait"))
		line, err := c.Out.ReadString('\n')
		got, _ := strconv.Atoi(strings.TrimSpace(line))
		if err == nil && got == pid {
			other = c
			break
		}
		if got > 0 {
			_ = syscall.Kill(got, syscall.SIGKILL)
		}
		c.Stop()
	}
	if other == nil {
		t.Skip("could not have a shell's child take a freed pid (other processes took it)")
	}
	defer func() {
		_ = syscall.Kill(pid, syscall.SIGKILL) // the shell's child, holding its output
		other.Stop()
	}()
	proctest.WaitComm(t, pid, sleep)
	now, err := process.NewReader().Identity(pid)
	if err != nil {
		t.Fatal(err)
	}
	// The fork events carry the time the kernel gives: the previous
	// process's fork.
	forkedAt := gone.StartedAt
	for _, evs := range [][]*process.Event{
		{{Kind: process.EventFork, PID: pid, PPID: me, Time: forkedAt}, {Kind: process.EventExec, PID: pid}},
		{{Kind: process.EventFork, PID: pid, PPID: me, Time: forkedAt}},
	} {
		out := batchEvents(t, evs...)
		if p := out[0].Process; p == nil || p.Starttime == now.Starttime || !p.Incomplete {
			t.Errorf("fork of a child of %d handled after pid %d went to a child of %d (start %d): %v, want incomplete, without that start time",
				me, pid, other.PID, now.Starttime, p)
		}
		if len(out) > 1 {
			if p := out[1].Process; p == nil || p.Starttime == now.Starttime || p.Path != "" || !p.Incomplete {
				t.Errorf("exec of that child: %+v, want incomplete, without the image or start time of the shell's child", p)
			}
		}
	}

	// The exec of the pid's previous process, cached live (its exit not
	// handled yet), handled after the pid went to the shell's child.
	if gone == nil || gone.Key() == now.Key() {
		t.Fatalf("the previous process of pid %d: %+v", pid, gone)
	}
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	m.cache.Put(gone)
	s := &batchSink{m: m}
	s.Event(&process.Event{Kind: process.EventExec, PID: pid})
	s.Flush(true)
	ex := <-m.events
	if p := ex.Process; p == nil || p.Key() != gone.Key() || p.Path != "" || !p.Incomplete {
		t.Errorf("exec of the cached %v after pid %d went to %v: %+v, want it incomplete, without the image read", gone.Key(), pid, now.Key(), p)
	}
	if it, ok := m.cache.Get(gone.Key()); !ok || it.Exited == 0 {
		t.Errorf("the cached %v is not marked exited: %+v %v", gone.Key(), it, ok)
	}
}

// TestBatchForkExecReparented: a child whose parent exited before the
// fork's and the exec's reads (reparented: /proc shows another parent)
// is still the fork's child, by its start time at the fork's: the fork
// gets its identity and the exec its image.
func TestBatchForkExecReparented(t *testing.T) {
	sleep := proctest.RequireTool(t, "sleep")
	sh := proctest.RequireTool(t, "sh")
	// The shell prints its child's pid and exits: the child is reparented.
	out, err := exec.Command(sh, "-c", sleep+" 30 </dev/null >/dev/null 2>&1 & echo $! $$").Output()
	if err != nil {
		t.Fatal(err)
	}
	var pid, shell int
	if _, err := fmt.Sscan(string(out), &pid, &shell); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	proctest.WaitComm(t, pid, sleep)
	now, err := process.NewReader().Identity(pid)
	if err != nil {
		t.Fatal(err)
	}
	if now.PPID == shell {
		t.Fatalf("pid %d still has its parent %d", pid, shell)
	}
	forkedAt := procfs.TicksToTime(procfs.BootTime(), uint64(now.Starttime)).Add(3 * time.Millisecond)
	for _, evs := range [][]*process.Event{
		{{Kind: process.EventFork, PID: pid, PPID: shell, Time: forkedAt}, {Kind: process.EventExec, PID: pid}},
		{{Kind: process.EventFork, PID: pid, PPID: shell, Time: forkedAt}},
	} {
		out := batchEvents(t, evs...)
		if p := out[0].Process; p == nil || p.Key() != now.Key() || p.Incomplete {
			t.Errorf("fork of %d by %d, which exited: %+v, want the identity %v", pid, shell, p, now.Key())
		}
		if len(out) > 1 {
			if p := out[1].Process; p == nil || p.Key() != now.Key() || p.Incomplete || filepath.Base(p.Path) != "sleep" {
				t.Errorf("exec of %d: %+v, want %v running sleep", pid, p, now.Key())
			}
		}
	}
}

// TestBatchForkHeldIntoNextBatch: a fork whose child's exec comes in the
// next batch is still held then (the events before it were offered, those
// from it on were not), and gets the child's identity from the exec's
// reads; a fork whose child execs in neither batch is completed at the
// second Flush with the identity it reads itself. Checked against /proc.
func TestBatchForkHeldIntoNextBatch(t *testing.T) {
	sleep := proctest.RequireTool(t, "sleep")
	c := proctest.Start(t, exec.Command(sleep, "30"))
	defer c.Stop()
	proctest.WaitComm(t, c.PID, sleep)
	want, err := process.NewReader().Identity(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	for _, execNext := range []bool{true, false} {
		m, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		s := &batchSink{m: m} // never offered: the first Flush(false) offers what is finished
		before := &process.Event{Kind: process.EventExit, PID: me}
		s.Event(before)
		s.Event(&process.Event{Kind: process.EventFork, PID: c.PID, PPID: me})
		s.Flush(false)
		if s.forks[c.PID] == nil || len(m.events) != 1 {
			t.Fatalf("after the fork's batch: fork held %v, %d events offered; want held, the one before it", s.forks[c.PID] != nil, len(m.events))
		}
		if ev := <-m.events; ev.Kind != EventExit {
			t.Fatalf("offered %v, want the exit before the fork", ev.Kind)
		}
		n := 1
		if execNext {
			s.Event(&process.Event{Kind: process.EventExec, PID: c.PID})
			n = 2
		}
		s.Flush(false)
		if s.forks[c.PID] != nil {
			t.Fatalf("exec in the next batch %v: the fork is still held after its Flush", execNext)
		}
		s.Flush(true)
		if len(m.events) != n {
			t.Fatalf("%d events offered, want %d", len(m.events), n)
		}
		for range n {
			ev := <-m.events
			if ev.Process == nil || ev.Process.Key() != want.Key() || ev.Process.Incomplete {
				t.Errorf("exec in the next batch %v: %v %+v, want the identity %v", execNext, ev.Kind, ev.Process, want.Key())
			}
		}
	}
}

// TestBatchAuditExecExit: an exec that carries its image without a start
// time (audit) followed in the batch by its exit is known gone: its
// identity is not read from /proc (the pid is live here, to show it: a
// read would give the exec its start time), it is cached without one and
// exited, and the two are offered in order. Without its exit in the batch
// the exec's identity is read at Flush.
func TestBatchAuditExecExit(t *testing.T) {
	sleep := proctest.RequireTool(t, "sleep")
	c := proctest.Start(t, exec.Command(sleep, "30"))
	defer c.Stop()
	proctest.WaitComm(t, c.PID, sleep)
	live, err := process.CurrentKey(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	auditExec := func() *process.Event {
		p := process.NewProcessWithParent(c.PID, me, "sleep")
		p.Path, p.Args = sleep, []string{sleep, "30"}
		return &process.Event{Kind: process.EventExec, PID: c.PID, Time: time.Now(), Method: process.MethodAudit, Process: p}
	}
	exit := &process.Event{Kind: process.EventExit, PID: c.PID, Method: process.MethodAudit,
		Process: process.NewProcessWithParent(c.PID, me, "sleep")}
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := &batchSink{m: m}
	s.Event(auditExec())
	s.Event(exit)
	s.Flush(true)
	var out []Event
	for len(m.events) > 0 {
		out = append(out, <-m.events)
	}
	if len(out) != 2 || out[0].Kind != EventExec || out[1].Kind != EventExit {
		t.Fatalf("offered %v, want the exec and its exit", out)
	}
	if p := out[0].Process; p == nil || p.Starttime != 0 || p.Path != sleep {
		t.Errorf("exec before its exit: %+v, want %s without a start time (not read from /proc)", p, sleep)
	}
	if item, ok := m.cache.Get(process.Key{PID: c.PID}); !ok || item.Exited == 0 {
		t.Errorf("the exec's process is not cached exited without a start time: %+v %v", item, ok)
	}

	out = batchEvents(t, auditExec())
	if p := out[0].Process; p == nil || p.Key() != live {
		t.Errorf("exec alone: %+v, want the identity %v read at Flush", p, live)
	}
}
