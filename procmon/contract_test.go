package procmon

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// seen is what a consumer read of an event's process when it got to it.
type seen struct {
	kind EventKind
	pid  int
	path string
	args []string
}

// TestEventsKeepTheirMoment: a consumer that is well behind the monitor
// (it starts late and sleeps on each event) while processes exec three
// times reads, for every event, the process as it was when that event
// happened: the fork shows the parent's image, each exec its own, however
// many execs and detail refreshes came after. Under -race the reads also
// prove that an event's process is read without locks and without races
// while the cache moves on.
func TestEventsKeepTheirMoment(t *testing.T) {
	proctest.RequireRoot(t, "the ebpf or netlink method")
	m := startFirst(t, []string{MethodEbpf, MethodNetlink})
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	env, _ := filepath.EvalSymlinks(proctest.RequireTool(t, "env"))
	sleep, _ := filepath.EvalSymlinks(proctest.RequireTool(t, "sleep"))
	// Each stage waits a little, so that even a method that reads the
	// image from /proc (netlink) reads each one before the next exec.
	const inner = "sleep 0.1; exec sleep 0.3"
	outer := "sleep 0.1; exec env TAG=1 sh -c '" + inner + "'"
	want := []seen{
		{kind: EventFork, path: self},
		{kind: EventExec, path: sh, args: []string{"/bin/sh", "-c", outer}},
		{kind: EventExec, path: env, args: []string{"env", "TAG=1", "sh", "-c", inner}},
		{kind: EventExec, path: sh, args: []string{"sh", "-c", inner}},
		{kind: EventExec, path: sleep, args: []string{"sleep", "0.3"}},
		{kind: EventExit, path: sleep, args: []string{"sleep", "0.3"}},
	}

	var mine sync.Map // pid -> true
	var mu sync.Mutex
	got := map[int][]seen{}
	late := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-late
		for {
			select {
			case ev, ok := <-m.Events():
				if !ok {
					return
				}
				if _, ok := mine.Load(ev.PID); !ok || ev.Process == nil {
					continue
				}
				time.Sleep(20 * time.Millisecond) // a slow consumer
				p := ev.Process                   // read now, long after the event
				mu.Lock()
				got[ev.PID] = append(got[ev.PID], seen{ev.Kind, ev.PID, p.Path, slices.Clone(p.Args)})
				mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	var cmds []*exec.Cmd
	for range 4 {
		cmd := exec.Command("/bin/sh", "-c", outer)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		mine.Store(cmd.Process.Pid, true)
		cmds = append(cmds, cmd)
	}
	time.Sleep(150 * time.Millisecond) // the consumer starts behind
	close(late)
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, cmd := range cmds {
			evs := got[cmd.Process.Pid]
			if len(evs) == 0 || evs[len(evs)-1].kind != EventExit {
				return false
			}
		}
		return true
	})
	close(stop)
	<-done
	for _, cmd := range cmds {
		pid := cmd.Process.Pid
		evs := got[pid]
		if len(evs) != len(want) {
			t.Errorf("pid %d: %d events, want %d: %+v", pid, len(evs), len(want), evs)
			continue
		}
		for i, w := range want {
			g := evs[i]
			if g.kind != w.kind || g.path != w.path || (w.args != nil && !slices.Equal(g.args, w.args)) {
				t.Errorf("pid %d event %d: %v %s %q, want %v %s %q", pid, i, g.kind, g.path, g.args, w.kind, w.path, w.args)
			}
		}
		// The cache moved on: it holds the last image.
		if item, ok := m.Cache().Peek(pid); !ok || item.Proc.Path != sleep {
			t.Errorf("pid %d: cached %+v", pid, item.Proc)
		}
	}
}

// startFirst starts a monitor running the first of methods that runs here,
// with a buffer no test fills, or skips.
func startFirst(t *testing.T, methods []string) *Monitor {
	t.Helper()
	for _, method := range methods {
		m, err := New(Config{Method: method, EventBuffer: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if m.Method() == method {
			t.Cleanup(func() { m.Close() })
			return m
		}
		m.Close()
	}
	t.Skipf("none of %v runs here", methods)
	return nil
}

// TestRangeEndsWhenContextDone: the README's loop, `for ev := range
// m.Events()`, ends when the context given to Start is cancelled, and the
// monitor has ended for good: no method, every later call an error or a
// zero value.
func TestRangeEndsWhenContextDone(t *testing.T) {
	m, err := New(Config{Method: MethodProc, ProcInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		for range m.Events() {
		}
		close(ended)
	}()
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("range over Events did not end after the context was cancelled")
	}
	if got := m.Method(); got != "" {
		t.Errorf("Method %q after the end", got)
	}
	st := m.Status()
	if st.Running != "" || !slices.ContainsFunc(st.Methods, func(s MethodStatus) bool { return s.Method == MethodProc && s.State == "stopped" }) {
		t.Errorf("Status after the end: %+v", st)
	}
	if err := m.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after the end: %v", err)
	}
	if err := m.SetMethod(MethodProc); !errors.Is(err, ErrClosed) {
		t.Errorf("SetMethod after the end: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close after the end: %v", err)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestStartStopCycles starts and stops a monitor 200 times, ended in turn
// by Close and by its context, on every method that runs here but audit
// (which shares the host's one audit daemon slot with the other tests'
// monitors; ebpf one cycle in 50, as loading its programs takes seconds
// under -race on a busy machine): no
// goroutine and no file descriptor is left behind, and a source that
// reports after the end (the sink is kept) panics nothing.
func TestStartStopCycles(t *testing.T) {
	methods := []string{MethodProc}
	if os.Geteuid() == 0 {
		methods = append(methods, MethodNetlink)
	}
	method := func(i int) string {
		if i%50 == 49 && os.Geteuid() == 0 {
			return MethodEbpf
		}
		return methods[i%len(methods)]
	}
	c := NewEventsStore() // shared, so the start scan reads only new processes
	took := map[string]time.Duration{}
	run := func(i int) {
		defer func(t0 time.Time) { took[method(i)] += time.Since(t0) }(time.Now())
		m, err := New(Config{Method: method(i), Cache: c.EventsStore, ProcInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		consumed := make(chan struct{})
		go func() {
			for range m.Events() {
			}
			close(consumed)
		}()
		if i%2 == 0 {
			cancel()
		} else {
			if err := m.Close(); err != nil {
				t.Error(err)
			}
			cancel()
		}
		<-consumed
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		// What a source still holding the sink could do: nothing happens.
		sink{m}.Event(&process.Event{Kind: process.EventExec, PID: os.Getpid()})
		sink{m}.Lost(1, "after the end")
		if m.Method() != "" || m.Start(ctx) == nil {
			t.Errorf("cycle %d: the monitor runs after its end", i)
		}
	}
	for _, i := range []int{0, 1, 49} { // warm up each method: lazily started runtime goroutines, caches
		run(i)
	}
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	for i := range 200 {
		run(i)
	}
	var g, f int
	waitFor(t, 5*time.Second, func() bool {
		g, f = runtime.NumGoroutine(), openFDs(t)
		return g <= goroutines && f <= fds
	})
	t.Logf("200 cycles (time by method %v): goroutines %d -> %d, fds %d -> %d", took, goroutines, g, fds, f)
}

// TestFindProcessFromMonitorCache: with a monitor running, FindProcess
// answers from its cache, with the parent and checksums the cache holds
// (the cold read has neither): the cache's version, which a later change
// of the process does not change; a process the cache lacks is read from
// /proc once and put into the cache.
func TestFindProcessFromMonitorCache(t *testing.T) {
	src := &fakeSource{name: MethodAudit} // no events: the cache has what the start scan and FindProcess put
	withSource(t, MethodAudit, src)
	before := proctest.Start(t, exec.Command("/bin/sleep", "30"))
	proctest.WaitComm(t, before.PID, "sleep")
	if p := FindProcess(before.PID, false); p == nil || p.Parent != nil || len(p.Checksums) != 0 {
		t.Fatalf("without a monitor: %+v", p)
	}
	m, _ := startMonitor(t, Config{Method: MethodAudit})
	m.Cache().SetComputeChecksums(true) // back-fills the start scan's processes
	cached, ok := m.Cache().Peek(before.PID)
	if !ok || len(cached.Proc.Checksums) == 0 {
		t.Fatalf("not cached with checksums: %+v", cached.Proc)
	}
	md5 := proctest.CoreutilsSum(t, "md5sum", "/proc/"+strconv.Itoa(before.PID)+"/exe")
	selfKey, err := process.CurrentKey(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, p *Process, pid int) {
		t.Helper()
		if p == nil {
			t.Fatalf("%s: nil", name)
		}
		item, ok := m.Cache().Peek(pid)
		if !ok {
			t.Fatalf("%s: not in the cache", name)
		}
		if p != item.Proc {
			t.Errorf("%s: %+v, want the cached %+v", name, p, item.Proc)
		}
		if p.Checksums[HashMD5] != md5 {
			t.Errorf("%s: md5 %q, want %q", name, p.Checksums[HashMD5], md5)
		}
		if p.Parent == nil || p.Parent.Key() != selfKey || len(p.Tree) == 0 || int(p.Tree[0].Value) != os.Getpid() {
			t.Errorf("%s: parent %+v tree %v, want this test (%v)", name, p.Parent, p.Tree, selfKey)
		}
	}
	check("cached", FindProcess(before.PID, false), before.PID)

	// A version: the process changing later leaves it as it was.
	found := FindProcess(before.PID, false)
	m.Cache().Change(found.Key(), func(p *process.Process) { p.Comm = "renamed" })
	if found.Comm != "sleep" || FindProcess(before.PID, false).Comm != "renamed" {
		t.Errorf("after a change: the earlier result says %q, a new one %q", found.Comm, FindProcess(before.PID, false).Comm)
	}

	after := proctest.Start(t, exec.Command("/bin/sleep", "30"))
	proctest.WaitComm(t, after.PID, "sleep")
	if _, ok := m.Cache().Peek(after.PID); ok {
		t.Fatal("cached without an event")
	}
	check("cold", FindProcess(after.PID, false), after.PID)
	if FindProcess(1<<30, false) != nil {
		t.Error("a pid that does not exist was found")
	}
}

// TestRefreshOfZombieKeepsImage: the detail refresh of a process that has
// exited but is not reaped yet (a zombie, which has no exe or cmdline left)
// keeps the image the process ran. Found by TestEventsKeepTheirMoment: the
// exit event of a short-lived process showed no path and no arguments.
func TestRefreshOfZombieKeepsImage(t *testing.T) {
	withSource(t, MethodAudit, &fakeSource{name: MethodAudit})
	m, _ := startMonitor(t, Config{Method: MethodAudit})
	cmd := exec.Command("/bin/sleep", "0.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	p := process.FindProcess(cmd.Process.Pid, false)
	if p == nil {
		t.Fatal("not found")
	}
	m.Cache().Put(p)
	waitFor(t, 5*time.Second, func() bool {
		_, err := process.CurrentKey(p.ID)
		return errors.Is(err, process.ErrGone) // a zombie: not reaped, by the deferred Wait
	})
	m.readDetails(p.Key())
	item, ok := m.Cache().Get(p.Key())
	if !ok || item.Proc.Path != p.Path || !slices.Equal(item.Proc.Args, p.Args) {
		t.Errorf("after the zombie's refresh: %q %q, want %q %q", item.Proc.Path, item.Proc.Args, p.Path, p.Args)
	}
}
