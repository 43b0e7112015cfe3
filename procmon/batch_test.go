package procmon

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
// the batch or not.
func TestBatchForkAfterPIDReuse(t *testing.T) {
	sleep := proctest.RequireTool(t, "sleep")
	sh := proctest.RequireTool(t, "sh")
	proctest.RequireRoot(t, "forcing a pid through "+nsLastPID)
	me := os.Getpid()
	// The new owner of the pid: sleep started by a shell (its parent).
	var pid int
	var other *proctest.Child
	for try := 0; try < 100 && other == nil; try++ {
		a := proctest.Start(t, exec.Command(sleep, "30"))
		pid = a.PID
		a.Stop() // killed and reaped: the pid is free
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
	for _, evs := range [][]*process.Event{
		{{Kind: process.EventFork, PID: pid, PPID: me}, {Kind: process.EventExec, PID: pid}},
		{{Kind: process.EventFork, PID: pid, PPID: me}},
	} {
		fork := batchEvents(t, evs...)[0]
		if p := fork.Process; p == nil || p.Starttime == now.Starttime || !p.Incomplete {
			t.Errorf("fork of a child of %d handled after pid %d went to a child of %d (start %d): %v, want incomplete, without that start time",
				me, pid, other.PID, now.Starttime, p)
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
