package procmon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// collector records the events of a monitor until stopped.
type collector struct {
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

func collect(m *Monitor) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ev := range m.Events() {
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
		}
	}()
	return c
}

// execs returns the exec events by pid.
func (c *collector) execs() map[int]Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int]Event{}
	for _, ev := range c.events {
		if ev.Kind == EventExec {
			out[ev.PID] = ev
		}
	}
	return out
}

func (c *collector) count(kind EventKind, pid int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.events {
		if ev.Kind == kind && ev.PID == pid {
			n++
		}
	}
	return n
}

func startMonitor(t *testing.T, cfg Config) (*Monitor, *collector) {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := collect(m)
	t.Cleanup(func() { m.Close(); <-c.done })
	return m, c
}

func TestUnknownMethod(t *testing.T) {
	if _, err := New(Config{Method: "kprobe"}); !errors.Is(err, ErrUnknownMethod) {
		t.Errorf("New(kprobe): %v", err)
	}
}

func TestProcMethod(t *testing.T) {
	m, c := startMonitor(t, Config{Method: MethodProc, ProcInterval: 20 * time.Millisecond})
	if m.Method() != MethodProc {
		t.Fatalf("Method %q", m.Method())
	}
	st := m.Status()
	for _, s := range st.Methods {
		if s.Method != MethodProc && s.State != "not tried" {
			t.Errorf("%s: %s, want not tried (proc was asked for)", s.Method, s.State)
		}
	}
	sleep, _ := filepath.EvalSymlinks("/bin/sleep")
	var pids []int
	for i := 0; i < 10; i++ {
		// sleep adds its arguments up: a unique one that adds little.
		cmd := exec.Command("/bin/sleep", "0.2", "0.00"+strconv.Itoa(i))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, cmd.Process.Pid)
		defer cmd.Wait()
	}
	waitFor(t, 5*time.Second, func() bool {
		ex := c.execs()
		for _, pid := range pids {
			if _, ok := ex[pid]; !ok {
				t.Logf("pid %d not seen yet", pid)
				return false
			}
		}
		return true
	})
	ex := c.execs()
	for i, pid := range pids {
		p := ex[pid].Process
		if p.Path != sleep || len(p.Args) != 3 || p.Args[2] != "0.00"+strconv.Itoa(i) {
			t.Errorf("pid %d: %s %q", pid, p.Path, p.Args)
		}
	}
	waitFor(t, 5*time.Second, func() bool { return c.count(EventExit, pids[0]) == 1 })
	item, ok := m.Cache().Peek(pids[0])
	if !ok || item.Exited == 0 {
		t.Errorf("exited process not marked in the cache: %+v %v", item, ok)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	if !cond() {
		t.Fatalf("condition not met within %v", d)
	}
}

// fakeSource is a method the test drives: it stands in for what a real
// kernel cannot give on demand (a backend dying mid-stream, losses).
type fakeSource struct {
	name     string
	startErr error
	sink     methods.Sink
	closed   bool
	errors   uint64
}

func (f *fakeSource) Name() string { return f.name }
func (f *fakeSource) Start(_ context.Context, sink methods.Sink) error {
	if f.startErr != nil {
		return f.startErr
	}
	f.sink = sink
	return nil
}
func (f *fakeSource) Close() error         { f.closed = true; return nil }
func (f *fakeSource) Stats() methods.Stats { return methods.Stats{Errors: f.errors} }

// withSource replaces a method's Source for one test.
func withSource(t *testing.T, name string, src methods.Source) {
	t.Helper()
	old := sources[name]
	sources[name] = func(Config) (methods.Source, error) { return src, nil }
	t.Cleanup(func() { sources[name] = old })
}

func TestLadderFallsBackWithReasons(t *testing.T) {
	withSource(t, MethodEbpf, &fakeSource{name: MethodEbpf, startErr: fmt.Errorf("%w: no BTF", methods.ErrUnavailable)})
	withSource(t, MethodNetlink, &fakeSource{name: MethodNetlink, startErr: fmt.Errorf("%w: needs CAP_NET_ADMIN", methods.ErrUnavailable)})
	audit := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, audit)
	m, _ := startMonitor(t, Config{})
	if m.Method() != MethodAudit {
		t.Fatalf("running %q, want audit", m.Method())
	}
	st := m.Status()
	want := []MethodStatus{
		{Method: MethodEbpf, State: "skipped", Reason: "method unavailable: no BTF"},
		{Method: MethodNetlink, State: "skipped", Reason: "method unavailable: needs CAP_NET_ADMIN"},
		{Method: MethodAudit, State: "running"},
		{Method: MethodProc, State: "not tried"},
	}
	if fmt.Sprint(st.Methods) != fmt.Sprint(want) {
		t.Errorf("Status\n%v\nwant\n%v", st.Methods, want)
	}
}

// TestLossReconciles: a loss has the cache repaired from /proc: a process
// the method never reported is cached, one that exited unreported is marked.
func TestLossReconciles(t *testing.T) {
	src := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, src)
	m, _ := startMonitor(t, Config{Method: MethodAudit})
	unseen := proctest.Start(t, exec.Command("/bin/sleep", "30"))
	proctest.WaitComm(t, unseen.PID, "sleep")
	before := m.Stats().Reconciliations
	src.sink.Lost(12, "test: ring buffer full")
	waitFor(t, 5*time.Second, func() bool { return m.Stats().Reconciliations > before })
	waitFor(t, 5*time.Second, func() bool { _, ok := m.Cache().Peek(unseen.PID); return ok })
	unseen.Stop()
	src.sink.Lost(0, "test: ENOBUFS")
	waitFor(t, 5*time.Second, func() bool { it, _ := m.Cache().Peek(unseen.PID); return it.Exited != 0 })
	if st := m.Stats(); st.Lost != 12 || st.LossReports != 2 {
		t.Errorf("Lost %d reports %d, want 12 and 2", st.Lost, st.LossReports)
	}
	want := map[string]Loss{"test: ring buffer full": {Reports: 1, Events: 12}, "test: ENOBUFS": {Reports: 1}}
	if st := m.Stats(); !maps.Equal(st.Losses, want) {
		t.Errorf("Losses %v, want %v", st.Losses, want)
	}
}

// TestSlowConsumer: a consumer that never reads loses events (counted), not
// the cache's currency.
func TestSlowConsumer(t *testing.T) {
	src := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, src)
	m, err := New(Config{Method: MethodAudit, EventBuffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var kids []*proctest.Child
	for i := 0; i < 5; i++ {
		c := proctest.Start(t, exec.Command("/bin/sleep", "30"))
		proctest.WaitComm(t, c.PID, "sleep")
		kids = append(kids, c)
		src.sink.Event(&process.Event{Kind: process.EventExec, PID: c.PID, Method: MethodAudit})
	}
	st := m.Stats()
	if st.Delivered != 2 || st.Dropped != 3 {
		t.Errorf("Delivered %d Dropped %d, want 2 and 3", st.Delivered, st.Dropped)
	}
	for _, c := range kids {
		if _, ok := m.Cache().Peek(c.PID); !ok {
			t.Errorf("pid %d not cached although its event was dropped", c.PID)
		}
	}
}

// TestGarbledEventsNoCrash feeds events a broken source might produce.
func TestGarbledEventsNoCrash(t *testing.T) {
	src := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, src)
	m, c := startMonitor(t, Config{Method: MethodAudit})
	for _, ev := range []*process.Event{
		{Kind: process.EventExec, PID: -5},
		{Kind: process.EventExec, PID: 1 << 30},
		{Kind: process.EventFork, PID: 1 << 30, PPID: -1},
		{Kind: process.EventExit, PID: 0},
		{Kind: process.EventUID, PID: 1 << 30},
		{Kind: process.EventUID, PID: os.Getpid(), Creds: &process.CredChange{}},
		{Kind: process.EventComm, PID: 1 << 30, Comm: "x"},
		{Kind: 200, PID: 1},
		{Kind: process.EventExec, Process: process.NewProcessEmpty(1<<30, "")},
	} {
		src.sink.Event(ev)
	}
	waitFor(t, 2*time.Second, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.events) == 9 })
	for _, ev := range c.events {
		if ev.Process == nil {
			t.Errorf("event %v without a process", ev.Kind)
		} else if ev.Kind == EventExec && ev.PID == 1<<30 && !ev.Process.Incomplete {
			t.Errorf("exec of a nonexistent pid not marked incomplete: %+v", ev.Process)
		}
	}
	if m.Stats().Incomplete == 0 {
		t.Error("incomplete execs not counted")
	}
}

func TestSwitchKeepsCacheAndCloseLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	m, err := New(Config{Method: MethodProc, ProcInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := m.Cache().Len()
	self, ok := m.Cache().Peek(os.Getpid())
	if !ok || n == 0 {
		t.Fatal("the start scan did not fill the cache")
	}
	fake := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, fake)
	if err := m.SetMethod(MethodAudit); err != nil {
		t.Fatal(err)
	}
	if m.Method() != MethodAudit {
		t.Fatalf("after SetMethod: %q", m.Method())
	}
	if again, ok := m.Cache().Peek(os.Getpid()); !ok || again.Proc != self.Proc || m.Cache().Len() < n {
		t.Error("switching methods lost cached processes")
	}
	if st := m.Status(); st.Methods[3].State != "not tried" || st.Methods[2].State != "running" {
		t.Errorf("status after switch: %+v", st)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !fake.closed {
		t.Error("source not closed")
	}
	// Events still buffered come first, then the end of the channel.
	for open, end := true, time.After(2*time.Second); open; {
		select {
		case _, open = <-m.Events():
		case <-end:
			t.Fatal("Events not closed")
		}
	}
	waitFor(t, 2*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}

func TestSeedFunctions(t *testing.T) {
	t.Cleanup(StopMonitor)
	SetMonitorMethod(MethodProc)
	if GetMonitorMethod() != MethodProc || !MethodIsProc() || MethodIsEbpf() || MethodIsAudit() {
		t.Fatalf("GetMonitorMethod %q", GetMonitorMethod())
	}
	if Default().Cache() != EventsCache.EventsStore || EventsCache.Len() == 0 {
		t.Error("the default monitor does not feed EventsCache")
	}
	SetMonitorMethod("nonsense")
	if GetMonitorMethod() != MethodProc {
		t.Error("an unknown method changed the running one")
	}
	// "ebpf" as a firewall author writes it: the best method this
	// machine allows, falling back with the reasons in Status.
	SetMonitorMethod(MethodEbpf)
	st := Default().Status()
	if st.Running == "" || st.Preferred != MethodEbpf {
		t.Fatalf("after SetMonitorMethod(ebpf): %+v", st)
	}
	if os.Geteuid() == 0 && !MethodIsEbpf() {
		t.Errorf("as root on this kernel the eBPF method should run: %+v", st.Methods)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { MonitorProcEvents(stop); close(done) }()
	close(stop)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("MonitorProcEvents did not return after stop")
	}
	if Default().Method() != "" {
		t.Error("default monitor still running after MonitorProcEvents returned")
	}
}

// TestDeniedEventsChangeNothing: an operation the sandbox denied (reported
// by the eBPF LSM tier, faked here: this host cannot load LSM programs; the
// VM tests deny for real) leaves the cached process as it was, and the
// kernel's rule answer is kept, not evaluated again.
func TestDeniedEventsChangeNothing(t *testing.T) {
	src := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, src)
	set, err := rules.NewSet(mustRule(t, rules.HookSetuid, "Userspace", "uid == 1000"))
	if err != nil {
		t.Fatal(err)
	}
	m, c := startMonitor(t, Config{Method: MethodAudit, Rules: set})
	pid := os.Getpid()
	before := process.FindProcess(pid, false)
	if before == nil {
		t.Fatal("no process")
	}
	m.Cache().Add(before)
	for _, ev := range []*process.Event{
		{Kind: process.EventUID, PID: pid, Verdict: process.VerdictDenied, MatchedInKernel: true, Matched: []string{"Kernel"},
			Creds: &process.CredChange{Old: before.Creds, New: process.Credentials{UID: 1000, EUID: 1000}}},
		{Kind: process.EventExec, PID: pid, Verdict: process.VerdictDenied, MatchedInKernel: true, Matched: []string{"Kernel"},
			Bprm: &process.Bprm{Path: "/tmp/x"}},
	} {
		src.sink.Event(ev)
	}
	waitFor(t, 2*time.Second, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.events) == 2 })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.events {
		if !slices.Equal(ev.Matched, []string{"Kernel"}) || ev.Process == nil {
			t.Errorf("%v: matched %q process %v", ev.Kind, ev.Matched, ev.Process)
		}
	}
	item, ok := m.Cache().Peek(pid)
	if !ok {
		t.Fatal("process left the cache")
	}
	if item.Proc.Creds.UID != before.Creds.UID || item.Proc.Path != before.Path {
		t.Errorf("cached process changed: uid %d path %q, was %d %q", item.Proc.Creds.UID, item.Proc.Path, before.Creds.UID, before.Path)
	}
}

func mustRule(t *testing.T, hook, name, event string) *rules.Rule {
	t.Helper()
	r, err := rules.Compile(hook, name, event, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSandboxRefusesOtherMethods: with sandbox mode on, a method other than
// ebpf is refused, at New+Start and by SetMethod, with ErrSandbox.
func TestSandboxRefusesOtherMethods(t *testing.T) {
	fc, err := ParseConfig([]byte("method: netlink\nsetuid:\n  enabled: true\n  sandbox: {enabled: true, deny_list: true}\n  rules: [{rule: R, event: uid == 1000}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(fc)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Start(t.Context()); !errors.Is(err, ErrSandbox) || !strings.Contains(err.Error(), "method netlink was asked for") {
		t.Errorf("Start: %v", err)
	}
	if err := m.SetMethod(MethodAudit); !errors.Is(err, ErrSandbox) {
		t.Errorf("SetMethod(audit): %v", err)
	}
}

// TestExecBprmEveryMethod: with bprm_check enabled, the exec events of a
// method without the LSM tier carry Event.Bprm read from the binary: a
// set-user-ID copy of sleep says so.
func TestExecBprmEveryMethod(t *testing.T) {
	proctest.RequireRoot(t, "netlink or audit, and a set-user-ID file")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "suid-sleep")
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{MethodNetlink, MethodAudit} {
		t.Run(method, func(t *testing.T) {
			m, c := startMonitor(t, Config{Method: method, Hooks: map[string]HookConfig{rules.HookBprmCheck: {Enabled: true}}})
			if m.Method() != method {
				t.Skipf("%s does not run here: %+v", method, m.Status())
			}
			cmd := exec.Command(bin, "0.3")
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			var got *Event
			waitFor(t, 5*time.Second, func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				for i := range c.events {
					if ev := &c.events[i]; ev.Kind == EventExec && ev.PID == cmd.Process.Pid && ev.Bprm != nil {
						got = ev
						return true
					}
				}
				return false
			})
			if b := got.Bprm; b.Path != bin || !b.Setuid || b.Setgid || b.Fileless {
				t.Errorf("bprm %+v", b)
			}
		})
	}
}

// TestUserNSEventAfterRefresh: a userns event that reaches the monitor
// after the detail refresh has read the process inside its new namespace
// (an overloaded host, a slow method) is still judged on the credentials
// the process had before. The process and its namespace are real; the
// method is faked, to deliver the event late on purpose.
func TestUserNSEventAfterRefresh(t *testing.T) {
	proctest.RequireRoot(t, "setpriv to uid 1000")
	setpriv := proctest.RequireTool(t, "setpriv")
	unshare := proctest.RequireTool(t, "unshare")
	src := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, src)
	set, err := rules.NewSet(mustRule(t, rules.HookCreateUserNS, "Unpriv", `NOT ecaps == "CAP_SYS_ADMIN" AND euid == 1000`))
	if err != nil {
		t.Fatal(err)
	}
	m, c := startMonitor(t, Config{Method: MethodAudit, Rules: set})
	self := process.ReadProcess(os.Getpid())
	if self == nil {
		t.Fatal("no process")
	}

	// --map-root-user: sleep runs as root of the new namespace, with every
	// capability there, as unshare itself between its unshare(2) and exec.
	cmd := exec.Command(setpriv, "--reuid=1000", "--regid=1000", "--clear-groups", unshare, "--user", "--map-root-user", "sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	// The exec as the method saw it, before the namespace: uid 1000, no
	// capabilities, this test's user namespace.
	before := process.NewProcessEmpty(pid, "unshare")
	before.Path = unshare
	waitFor(t, 5*time.Second, func() bool {
		k, err := process.CurrentKey(pid)
		before.Starttime = int64(k.StartTicks)
		return err == nil
	})
	before.Creds = process.Credentials{UID: 1000, EUID: 1000, SUID: 1000, FSUID: 1000, GID: 1000, EGID: 1000,
		SGID: 1000, FSGID: 1000, UserNS: self.Creds.UserNS}
	src.sink.Event(&process.Event{Kind: process.EventExec, PID: pid, Process: before})
	// The process is in its new namespace (sleep runs there) when the
	// detail refresh reads it.
	waitFor(t, 5*time.Second, func() bool {
		p := process.ReadProcess(pid)
		return p != nil && p.Comm == "sleep" && p.Creds.UserNS != self.Creds.UserNS
	})
	m.readDetails(before.Key())
	if item, _ := m.Cache().Peek(pid); item.Proc.Creds.CapEffective == 0 {
		t.Fatalf("the refresh did not read the new namespace: %+v", item.Proc.Creds)
	}
	// Now the late userns event, without credentials (as audit sends it).
	src.sink.Event(&process.Event{Kind: process.EventUserNS, PID: pid})
	var got *Event
	waitFor(t, 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i := range c.events {
			if ev := &c.events[i]; ev.Kind == EventUserNS && ev.PID == pid {
				got = ev
				return true
			}
		}
		return false
	})
	if !slices.Equal(got.Matched, []string{"Unpriv"}) || got.Creds == nil || got.Creds.Old.CapEffective != 0 || got.Creds.New.CapEffective == 0 {
		t.Errorf("matched %q creds %+v", got.Matched, got.Creds)
	}
}

// TestAuditExecOfGoneProcess: audit reports an exec without the start
// time; when the process has already exited (a short-lived child) the exec
// still applies to the cached entry of that process, so that its later
// events (a user namespace, a credential change) see the new image. Found
// by TestRuleCasesMethods/audit failing in CI: the exec went to a new
// entry keyed (pid, 0) and the userns event was judged on the process as
// it was before the exec.
func TestAuditExecOfGoneProcess(t *testing.T) {
	sleep := proctest.RequireTool(t, "sleep")
	src := &fakeSource{name: MethodAudit}
	withSource(t, MethodAudit, src)
	m, _ := startMonitor(t, Config{Method: MethodAudit})

	cmd := exec.Command(sleep, "0.01")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	key, err := process.CurrentKey(pid)
	if err != nil {
		t.Fatal(err)
	}
	src.sink.Event(&process.Event{Kind: process.EventFork, PID: pid, PPID: os.Getpid()})
	waitFor(t, 5*time.Second, func() bool { _, ok := m.Cache().Get(key); return ok })
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// The exec as audit reports it, handled after the process is gone.
	img := process.NewProcessEmpty(pid, "unshare")
	img.Path, img.PPID = "/usr/bin/unshare", os.Getpid()
	src.sink.Event(&process.Event{Kind: process.EventExec, PID: pid, Process: img})
	src.sink.Event(&process.Event{Kind: process.EventUserNS, PID: pid})
	waitFor(t, 5*time.Second, func() bool {
		item, ok := m.Cache().Get(key)
		return ok && item.Proc.Path == img.Path
	})
	item, ok := m.Cache().Get(key)
	if !ok || item.Proc.Path != img.Path {
		t.Fatalf("the exec did not reach the cached process %v: %+v", key, item)
	}
	if _, stray := m.Cache().Get(process.Key{PID: pid}); stray {
		t.Errorf("the exec made a second entry for pid %d without a start time", pid)
	}
}
