package ebpf

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/internal/sysnum"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// Source implements methods.Source.
var _ methods.Source = (*Source)(nil)

// expectTierEnv makes TestTierProbe require a tier (for the VM runs).
const expectTierEnv = "PROCTRACK_EBPF_EXPECT_TIER"

// TestTierProbe checks the host's probe: on the development machines (6.18,
// bpf in the LSM list, LSM programs do not load) the tracepoint tier, with
// the reason.
func TestTierProbe(t *testing.T) {
	proctest.RequireRoot(t, "the LSM test program")
	r := ProbeTier()
	t.Logf("probe: %s (%+v)", r, r)
	if r.Kernel == "" || (r.Tier != TierLSM && r.Tier != TierTracepoint) {
		t.Fatalf("report %+v", r)
	}
	if r.Tier == TierTracepoint && !strings.HasPrefix(r.Reason, "lsm tier skipped: ") {
		t.Errorf("reason %q", r.Reason)
	}
	if r.Tier == TierLSM && (r.Reason != "" || r.LSMProbe != "attached" || !lsmListHas(r.LSMs, "bpf")) {
		t.Errorf("lsm tier with %+v", r)
	}
	if want := os.Getenv(expectTierEnv); want != "" && r.Tier != want {
		t.Fatalf("tier %s, %s=%s", r.Tier, expectTierEnv, want)
	}
	if !strings.HasPrefix(r.String(), r.Tier+" tier") {
		t.Errorf("String() = %q", r.String())
	}

	// A started source says the same.
	src, _ := startSource(t, Config{})
	if src.Tier() != r.Tier || src.Status() != src.Report().String() || src.Report().Tier != r.Tier {
		t.Errorf("source: tier %q status %q; probe %q", src.Tier(), src.Status(), r)
	}
}

// TestTierProbeLogic checks the probe's decisions on other hosts' inputs.
func TestTierProbeLogic(t *testing.T) {
	attachOK := func() error { return nil }
	attachFails := func() error { return errors.New("an LSM program loads but does not attach: not supported") }
	list := func(l string, mounted bool) func() (string, bool, error) {
		return func() (string, bool, error) { return l, mounted, nil }
	}
	rel := func(r string) func() (string, error) { return func() (string, error) { return r, nil } }
	for _, c := range []struct {
		name   string
		p      prober
		tier   string
		reason string
	}{
		{"debian 6.1 with bpf", prober{rel("6.1.0-18-amd64"), list("lockdown,capability,landlock,yama,apparmor,bpf", false), attachOK},
			TierTracepoint, "lsm tier skipped: kernel 6.1 < 6.2"},
		{"5.15", prober{rel("5.15.0-100-generic"), list("capability,bpf", false), attachOK},
			TierTracepoint, "lsm tier skipped: kernel 5.15 < 6.2"},
		{"no bpf lsm", prober{rel("6.12.9-amd64"), list("lockdown,capability,landlock", false), attachOK},
			TierTracepoint, "lsm tier skipped: bpf not in the active LSM list (lockdown,capability,landlock)"},
		{"attach fails", prober{rel("6.18.44-fc"), list("lockdown,capability,landlock,bpf", false), attachFails},
			TierTracepoint, "lsm tier skipped: an LSM program loads but does not attach: not supported"},
		{"6.12 with bpf", prober{rel("6.12.9-amd64"), list("lockdown,capability,landlock,yama,bpf", true), attachOK},
			TierLSM, ""},
		{"6.2 exactly", prober{rel("6.2.0"), list("bpf", false), attachOK}, TierLSM, ""},
		{"odd release", prober{rel("linux"), list("bpf", false), attachOK},
			TierTracepoint, `lsm tier skipped: kernel release "linux" not understood`},
		{"no securityfs", prober{rel("6.12.1"), func() (string, bool, error) {
			return "", false, errors.New("securityfs not mounted, and mounting it failed: operation not permitted")
		}, attachOK}, TierTracepoint, "lsm tier skipped: active LSM list unreadable: securityfs not mounted, and mounting it failed: operation not permitted"},
	} {
		r := c.p.run()
		if r.Tier != c.tier || r.Reason != c.reason {
			t.Errorf("%s: tier %q reason %q, want %q %q", c.name, r.Tier, r.Reason, c.tier, c.reason)
		}
		if c.name == "6.12 with bpf" && !strings.Contains(r.String(), "securityfs was not mounted") {
			t.Errorf("%s: %q does not say securityfs was mounted", c.name, r)
		}
	}
	if got := (TierReport{Tier: TierTracepoint, Reason: "lsm tier skipped: kernel 6.1 < 6.2"}).String(); got != "tracepoint tier: lsm tier skipped: kernel 6.1 < 6.2" {
		t.Errorf("String() = %q", got)
	}
}

// TestForcedTiers checks Config.Tier.
func TestForcedTiers(t *testing.T) {
	proctest.RequireRoot(t, "loading BPF programs")
	src, _ := startSource(t, Config{Tier: TierTracepoint})
	if src.Tier() != TierTracepoint || !strings.Contains(src.Status(), "Config.Tier is tracepoint") {
		t.Errorf("tier %q status %q", src.Tier(), src.Status())
	}
	if ProbeTier().Tier == TierLSM {
		return
	}
	lsm := New(Config{Tier: TierLSM})
	err := lsm.Start(t.Context(), nopSink{})
	if !errors.Is(err, methods.ErrUnavailable) || !strings.Contains(err.Error(), "lsm tier requested") {
		lsm.Close()
		t.Fatalf("Start with Tier lsm on a host without it: %v", err)
	}
	if lsm.Tier() != "" || !strings.HasPrefix(lsm.Status(), "not running") {
		t.Errorf("tier %q status %q", lsm.Tier(), lsm.Status())
	}
	if err := New(Config{Tier: "best"}).Start(t.Context(), nopSink{}); err == nil || errors.Is(err, methods.ErrUnavailable) {
		t.Errorf("unknown tier: %v", err)
	}
}

// TestUnavailableWithoutCapabilities runs a Source in a child without
// CAP_BPF, CAP_SYS_ADMIN and CAP_PERFMON.
func TestUnavailableWithoutCapabilities(t *testing.T) {
	got := proctest.RunWithoutCaps(t, "-bpf,-sys_admin,-perfmon", helperEnv+"=start")
	if !strings.HasPrefix(got, "unavailable: ") || !strings.Contains(got, "CAP_BPF") || !strings.Contains(got, "CAP_SYS_ADMIN") {
		t.Errorf("child without capabilities: %q", got)
	}
	t.Log(got)
}

// TestUnavailableInPidNamespace runs a Source in a child in a new pid
// namespace: the programs would report host pids there (0 of 24 exec pids
// matched the pids the child spawned), so Start must refuse, naming the
// pid namespace.
func TestUnavailableInPidNamespace(t *testing.T) {
	proctest.RequireRoot(t, "creating a pid namespace")
	cmd := helper("start")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	out, err := cmd.Output()
	got := strings.TrimSpace(string(out))
	if err != nil {
		t.Fatalf("child in a new pid namespace: %v %q", err, got)
	}
	if !strings.HasPrefix(got, "unavailable: ") || !strings.Contains(got, "pid namespace") {
		t.Errorf("child in a new pid namespace: %q, want unavailable naming the pid namespace", got)
	}
	t.Log(got)
}

// TestLossReported floods a one-page ring buffer while the sink is stuck
// and checks that the kernel's loss counter reaches Stats and the sink.
func TestLossReported(t *testing.T) {
	rec := newRecorder()
	rec.Block = make(chan struct{})
	src := New(Config{RingBufferSize: 1, Hooks: map[string]bool{}})
	proctest.RequireRoot(t, "loading BPF programs")
	if err := src.Start(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if out, err := exec.Command("sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /bin/true; done").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	close(rec.Block)
	if !rec.WaitUntil(10*time.Second, func([]*process.Event) bool { return rec.LostCount() > 0 }) {
		t.Fatalf("no loss reported; stats %+v counters %+v", src.Stats(), src.Counters())
	}
	st, c := src.Stats(), src.Counters()
	_, losses := rec.Snapshot()
	if st.Lost == 0 || st.LostTimes == 0 || st.Lost != rec.LostCount() || !strings.HasSuffix(losses[0], ": ring buffer full") {
		t.Errorf("stats %+v, sink saw %d in %q", st, rec.LostCount(), losses)
	}
	if c.LostExec+c.LostFork+c.LostExit+c.LostSyscall+c.LostLSM != st.Lost {
		t.Errorf("losses by kind %+v do not add up to %d", c, st.Lost)
	}
	t.Logf("stats %+v, losses %q", st, losses)
}

// TestPendingLossAccounting checks when a loss becomes due: once the bytes
// queued behind the first record read after it (its Remaining) are read,
// counted as the kernel stores records (8-byte header, 8-byte padding), or
// once the ring buffer is found empty; a new loss waits for a new count.
func TestPendingLossAccounting(t *testing.T) {
	var p pendingLoss
	p.read(&ringbuf.Record{RawSample: make([]byte, 10), Remaining: 100}) // no loss: nothing counted
	if p.due() || p.known {
		t.Fatalf("due without a loss: %+v", p)
	}
	p.seen(3)
	if p.due() {
		t.Fatal("due before any record was read")
	}
	p.read(&ringbuf.Record{RawSample: make([]byte, 20), Remaining: 56}) // 56 bytes follow
	p.read(&ringbuf.Record{RawSample: make([]byte, 20)})                // 8 + 24
	if p.due() || p.behind != 24 {
		t.Fatalf("due with 24 bytes left: %+v", p)
	}
	p.seen(2) // a new loss: what follows must be counted again
	p.read(&ringbuf.Record{RawSample: make([]byte, 13), Remaining: 64})
	p.read(&ringbuf.Record{RawSample: make([]byte, 16)}) // 8 + 16
	p.read(&ringbuf.Record{RawSample: make([]byte, 31)}) // 8 + 32
	if !p.due() || p.lost != 5 {
		t.Fatalf("not due after the backlog: %+v", p)
	}
	p = pendingLoss{}
	p.seen(1)
	p.drained()
	if !p.due() {
		t.Fatalf("not due once the ring buffer was found empty: %+v", p)
	}
}

// TestCloseNoLeak checks that Close stops every goroutine, and that Close
// twice and Start after Close behave.
func TestCloseNoLeak(t *testing.T) {
	proctest.RequireRoot(t, "loading BPF programs")
	before := runtime.NumGoroutine()
	for range 3 {
		src := New(Config{GCPeriod: 10 * time.Millisecond})
		if err := src.Start(t.Context(), nopSink{}); err != nil {
			t.Fatal(err)
		}
		_ = exec.Command("/bin/true").Run()
		time.Sleep(30 * time.Millisecond)
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if err := src.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := src.Start(t.Context(), nopSink{}); err == nil {
			t.Error("Start after Close succeeded")
		}
		if src.Tier() != "" || src.Programs() != nil {
			t.Errorf("after Close: tier %q programs %v", src.Tier(), src.Programs())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestContextEndsReading checks that the source stops delivering when the
// Start context ends, and Close still works.
func TestContextEndsReading(t *testing.T) {
	proctest.RequireRoot(t, "loading BPF programs")
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	src := New(Config{})
	if err := src.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(50 * time.Millisecond)
	evs, _ := rec.Snapshot()
	n := len(evs)
	_ = exec.Command("/bin/true").Run()
	time.Sleep(300 * time.Millisecond)
	if evs, _ := rec.Snapshot(); len(evs) != n {
		t.Errorf("%d events after the context ended", len(evs)-n)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGarbageCollection seeds a kernel map shaped as the map of executable
// paths (a BPF hash map; the LSM tier that fills the real one does not load
// everywhere), plants stale entries and checks that the collector removes
// them and keeps live ones.
func TestGarbageCollection(t *testing.T) {
	proctest.RequireRoot(t, "creating a BPF map")
	spec, err := bpf.LoadProcmon()
	if err != nil {
		t.Fatal(err)
	}
	ms := spec.Maps[bpf.ProcmonMapExePaths].Copy()
	ms.MaxEntries = 65536
	m, err := ebpf.NewMap(ms)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n, err := seedExePaths(m, procfs.DefaultRoot); err != nil || n == 0 {
		t.Fatalf("seeded %d: %v", n, err)
	}
	self := uint32(os.Getpid())
	var v bpf.ProcmonExeVal
	if err := m.Lookup(self, &v); err != nil {
		t.Fatalf("this process is not in the map: %v", err)
	}
	if want := startTicks(t, os.Getpid()); v.StartNs/nsPerTick != want {
		t.Errorf("map start %d ticks, /proc %d", v.StartNs/nsPerTick, want)
	}
	// A pid nobody uses (pid_max is at most 4194304) and a live pid with the
	// wrong start time.
	stale := []uint32{4194400, 1}
	if err := m.Put(uint32(4194400), bpf.ProcmonExeVal{StartNs: 12345 * nsPerTick}); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(uint32(1), bpf.ProcmonExeVal{StartNs: 1 << 62}); err != nil {
		t.Fatal(err)
	}
	n, err := gcExePaths(m, procfs.DefaultRoot)
	if err != nil || n < len(stale) {
		t.Errorf("removed %d: %v", n, err)
	}
	for _, k := range stale {
		if m.Lookup(k, &v) == nil {
			t.Errorf("stale entry %d kept", k)
		}
	}
	if err := m.Lookup(self, &v); err != nil {
		t.Errorf("live entry removed: %v", err)
	}
}

// TestSyscallTables checks that every watched system call has a number in
// the running architecture's native table that fits the filter arrays, and
// that the filter for every hook holds only watched calls.
func TestSyscallTables(t *testing.T) {
	for goarch, want := range map[string][2]*sysnum.Table{
		"amd64": {sysnum.AMD64, sysnum.I386}, "arm64": {sysnum.ARM64, sysnum.ARM}, "riscv64": {}, "386": {},
	} {
		if n, c := syscallTables(goarch); n != want[0] || c != want[1] {
			t.Errorf("%s: %v %v", goarch, n, c)
		}
	}
	// The tracepoint tier decodes system calls wherever there is a table
	// (it did on amd64 only: arm64 reported no privilege events).
	progs := programsFor(TierTracepoint, map[string]bool{HookSetuid: true}, false)
	if has := slices.Contains(progs, bpf.ProcmonProgHandleSysExit); has != (nativeSyscalls != nil) {
		t.Errorf("%s: tracepoint tier programs %v", runtime.GOARCH, progs)
	}
	if nativeSyscalls == nil {
		t.Skipf("no system call table for %s", runtime.GOARCH)
	}
	for _, name := range []string{"setuid", "setresgid", "setgroups", "capset", "prctl", "unshare", "clone", "clone3", "ptrace"} {
		if _, ok := nativeSyscalls.Number(name); !ok {
			t.Errorf("%s: %s missing", nativeSyscalls.Arch, name)
		}
	}
	all := map[string]bool{}
	for _, h := range []string{HookSetuid, HookSetgid, HookCapset, HookPrctl, HookCreateUserNS, HookPtraceAccessCheck} {
		all[h] = true
	}
	for _, tab := range []*sysnum.Table{nativeSyscalls, compatSyscalls} {
		if tab == nil {
			continue
		}
		f := filterTable(tab, all)
		if len(f) < 10 {
			t.Errorf("%s: %d calls in the filter", tab.Arch, len(f))
		}
		for nr, code := range f {
			name := syscallName(tab, nr)
			if nr >= syscallSlots || sysCode(code).kind() == process.EventUnknown || watchedSyscalls[name] != sysCode(code) {
				t.Errorf("%s: %d (%s) -> %d", tab.Arch, nr, name, code)
			}
		}
	}
}

// TestCycles loads and closes the tracepoint tier 200 times, ending every
// other run by its context first: no goroutine or descriptor (program,
// map, link, ring buffer) is left, and a second Start fails with
// methods.ErrClosed.
func TestCycles(t *testing.T) {
	proctest.RequireRoot(t, "loading BPF programs")
	proctest.CheckCycles(t, 200, func(i int) {
		src := New(Config{Tier: TierTracepoint, Logger: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := src.Start(ctx, nopSink{}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			cancel()
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if err := src.Start(context.Background(), nopSink{}); !errors.Is(err, methods.ErrClosed) {
			t.Fatalf("Start after Close: %v, want methods.ErrClosed", err)
		}
	})
}
