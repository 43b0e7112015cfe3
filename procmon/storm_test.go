package procmon

import (
	"context"
	"fmt"
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

	"golang.org/x/sys/unix"
)

// storm runs n fork+exec+wait of /bin/true with the unique argument
// "<tag>-<i>", from two shell loops (one per core of the machines here) so
// that the test process itself spends nothing on them. It returns how long
// the storm took.
func storm(tb testing.TB, n int, tag string) time.Duration {
	tb.Helper()
	return stormAsync(tb, n, tag, func([]int) {})
}

// stormResult counts what a monitor reported of a storm.
type stormResult struct {
	n        int // processes the storm ran
	forks    int // fork events of the loops' children
	execs    int // exec events of those children
	named    int // exec events with the exact path and arguments
	elapsed  time.Duration
	cpu      time.Duration // CPU the test process (the monitor) spent during the storm
	mallocs  uint64        // heap allocations of the test process during the storm
	events   uint64        // events the monitor received during the storm
	dropped  uint64
	lost     uint64
	badNamed []string // exec events naming a process wrongly (must stay empty)
}

// mallocs returns the number of heap allocations this process has made.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stormWith runs a storm of n under monitor m and counts its events. It
// waits for the events to drain before counting.
func stormWith(tb testing.TB, m *Monitor, n int) stormResult {
	tb.Helper()
	tag := "storm" + strconv.Itoa(os.Getpid()) + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	truePath, _ := filepath.EvalSymlinks("/bin/true")
	var mu sync.Mutex
	loops := map[int]bool{}
	children := map[int]bool{}
	execSeen := map[int]bool{}
	res := stormResult{n: n}
	var pending []Event
	consume := func(ev Event) {
		switch ev.Kind {
		case EventFork:
			if loops[ev.PPID] {
				children[ev.PID] = true
				res.forks++
			}
		case EventExit:
			// The pid may be reused from here on, by a process that is
			// not the storm's (the pid space wraps in a long test run).
			delete(children, ev.PID)
		case EventExec:
			p := ev.Process
			if p == nil {
				return
			}
			path, args, ppid := p.Path, p.Args, p.PPID
			mine := len(args) == 2 && strings.HasPrefix(args[1], tag+"-")
			if children[ev.PID] || loops[ppid] || mine {
				if !execSeen[ev.PID] {
					execSeen[ev.PID] = true
					res.execs++
				}
				if mine && path == truePath && args[0] == "/bin/true" {
					res.named++
				} else if mine || (path != "" && path != truePath && !strings.HasSuffix(path, "/sh") && !strings.HasSuffix(path, "/dash")) {
					res.badNamed = append(res.badNamed, fmt.Sprintf("pid %d: %s %q", ev.PID, path, args))
				}
			}
		}
	}
	done := make(chan struct{})
	stopC := make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(done)
		close(started)
		for {
			select {
			case ev, ok := <-m.Events():
				if !ok {
					return
				}
				mu.Lock()
				if len(loops) == 0 {
					pending = append(pending, ev) // loop pids not known yet
				} else {
					consume(ev)
				}
				mu.Unlock()
			case <-stopC:
				return
			}
		}
	}()
	<-started
	before := m.Stats()
	cpu0, mallocs0 := cpuTime(), mallocs()
	// The loops' pids are learnt from the shell's fork events too: the
	// first exec events may come before storm returns.
	elapsed := stormAsync(tb, n, tag, func(pids []int) {
		mu.Lock()
		for _, p := range pids {
			loops[p] = true
		}
		for _, ev := range pending {
			consume(ev)
		}
		pending = nil
		mu.Unlock()
	})
	// Drain: wait until no event arrived for a while, or at most 30 s (on
	// a machine where other programs keep starting processes, silence
	// never comes).
	for last, end := -1, time.Now().Add(30*time.Second); time.Now().Before(end); {
		time.Sleep(300 * time.Millisecond)
		st := m.Stats()
		if int(st.Events) == last {
			break
		}
		last = int(st.Events)
	}
	res.cpu = cpuTime() - cpu0
	res.mallocs = mallocs() - mallocs0
	close(stopC)
	<-done
	after := m.Stats()
	res.elapsed = elapsed
	res.events = after.Events - before.Events
	res.dropped = after.Dropped - before.Dropped
	res.lost = after.Lost - before.Lost + (after.LossReports - before.LossReports)
	return res
}

// stormAsync is storm that reports the loops' pids as soon as they start.
func stormAsync(tb testing.TB, n int, tag string, started func([]int)) time.Duration {
	tb.Helper()
	const loops = 2
	var cmds []*exec.Cmd
	for l := 0; l < loops; l++ {
		from, to := l*n/loops, (l+1)*n/loops
		script := fmt.Sprintf("i=%d; while [ $i -lt %d ]; do /bin/true %s-$i; i=$((i+1)); done", from, to, tag)
		cmds = append(cmds, exec.Command("/bin/sh", "-c", script))
	}
	begin := time.Now()
	var pids []int
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			tb.Fatal(err)
		}
		pids = append(pids, c.Process.Pid)
	}
	started(pids)
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(begin)
}

// baselineRate measures the storm without a monitor, in processes per second.
func baselineRate(tb testing.TB, n int) float64 {
	d := storm(tb, n, "baseline")
	return float64(n) / d.Seconds()
}

func (r stormResult) String() string {
	return fmt.Sprintf("%d processes in %v (%.0f/s): %d forks, %d execs (%.1f%%), %d named with path and args (%.1f%%), %.1f µs CPU per exec, %d dropped, %d lost",
		r.n, r.elapsed.Round(time.Millisecond), float64(r.n)/r.elapsed.Seconds(), r.forks, r.execs, 100*float64(r.execs)/float64(r.n),
		r.named, 100*float64(r.named)/float64(r.n), float64(r.cpu.Microseconds())/float64(r.n), r.dropped, r.lost)
}

// TestExecStormProc: the proc method misses short-lived processes by
// design; what it reports must be right.
func TestExecStormProc(t *testing.T) {
	m, err := New(Config{Method: MethodProc, ProcInterval: 10 * time.Millisecond, EventBuffer: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := stormWith(t, m, 500)
	t.Logf("proc: %s", r)
	if len(r.badNamed) > 0 {
		t.Errorf("wrongly named: %v", r.badNamed[:min(5, len(r.badNamed))])
	}
}

// startOnly starts a monitor running exactly method, or skips.
func startOnly(tb testing.TB, method string, cfg Config) *Monitor {
	tb.Helper()
	cfg.Method = method
	if cfg.EventBuffer == 0 {
		cfg.EventBuffer = 1 << 16
	}
	m, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if m.Method() != method {
		st := m.Status()
		m.Close()
		tb.Skipf("%s does not run here: %+v", method, st.Methods)
	}
	return m
}

// TestExecStorm: netlink reports every exec of a 5,000-process storm; ebpf
// and audit every exec with the right path and arguments.
func TestExecStorm(t *testing.T) {
	for _, method := range []string{MethodEbpf, MethodNetlink, MethodAudit} {
		t.Run(method, func(t *testing.T) {
			m := startOnly(t, method, Config{})
			defer m.Close()
			r := stormWith(t, m, 5000)
			t.Logf("%s: %s", method, r)
			if len(r.badNamed) > 0 {
				t.Errorf("%d wrongly named, e.g. %v", len(r.badNamed), r.badNamed[:min(5, len(r.badNamed))])
			}
			switch method {
			case MethodNetlink:
				if r.execs != r.n {
					t.Errorf("netlink reported %d of %d execs", r.execs, r.n)
				}
			case MethodAudit, MethodEbpf:
				if r.named != r.n {
					t.Errorf("%s named %d of %d execs with path and arguments", method, r.named, r.n)
				}
			}
		})
	}
}

// BenchmarkExecStorm reports, per method, what the README quotes: the
// storm's rate with the monitor against without, the monitor's CPU per exec,
// the share of execs reported and the share named with path and arguments,
// and the heap allocations of the whole test process (the method, the
// monitor, the cache and the consumer) per event received.
func BenchmarkExecStorm(b *testing.B) {
	const n = 3000
	for _, method := range []string{MethodEbpf, MethodNetlink, MethodAudit, MethodProc} {
		b.Run(method, func(b *testing.B) {
			base := baselineRate(b, n)
			m := startOnly(b, method, Config{ProcInterval: 100 * time.Millisecond})
			defer m.Close()
			var r stormResult
			for b.Loop() {
				r = stormWith(b, m, n)
			}
			rate := float64(n) / r.elapsed.Seconds()
			b.ReportMetric(rate, "execs/s")
			b.ReportMetric(float64(r.events)/r.elapsed.Seconds(), "events/s")
			b.ReportMetric(rate/base, "x-unmonitored")
			b.ReportMetric(float64(r.cpu.Nanoseconds())/1e3/float64(n), "cpu-µs/exec")
			b.ReportMetric(100*float64(r.execs)/float64(n), "%reported")
			b.ReportMetric(100*float64(r.named)/float64(n), "%named")
			b.ReportMetric(float64(r.mallocs)/float64(r.events), "allocs/event")
		})
	}
}

// BenchmarkMonitorCost is BenchmarkExecStorm without a consumer of
// Events(): the cost of the method and the monitor keeping the cache
// current, alone.
func BenchmarkMonitorCost(b *testing.B) {
	const n = 3000
	for _, method := range []string{MethodEbpf, MethodNetlink, MethodAudit} {
		b.Run(method, func(b *testing.B) {
			base := baselineRate(b, n)
			m := startOnly(b, method, Config{EventBuffer: 1})
			defer m.Close()
			var d, cpu time.Duration
			var allocs, events uint64
			for b.Loop() {
				c0, m0, e0 := cpuTime(), mallocs(), m.Stats().Events
				d = storm(b, n, "cost")
				time.Sleep(300 * time.Millisecond) // let the last events in
				cpu, allocs, events = cpuTime()-c0, mallocs()-m0, m.Stats().Events-e0
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(n), "cpu-µs/exec")
			b.ReportMetric(float64(n)/d.Seconds()/base, "x-unmonitored")
			b.ReportMetric(float64(allocs)/float64(events), "allocs/event")
		})
	}
}

// childrenCPU returns the CPU time of this process's waited-for children
// (the storm's shells, and through them their /bin/true children).
func childrenCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExecStormRounds is BenchmarkExecStorm in rounds (one a
// b.Loop iteration, -test.benchtime Nx for N): each round runs a storm of
// 1,000 unmonitored, then starts a monitor of the method (a consumer
// draining Events()), runs a storm under it and closes it, and takes the
// round's ratio of the two rates. The medians over the rounds are steadier
// than BenchmarkExecStorm's ratio, whose one unmonitored storm before the
// monitored ones carries all the noise of a shared machine.
// child-cpu-µs/exec is the storm's own extra CPU per exec under the
// monitor (its processes' CPU, monitored minus unmonitored): what the
// programs in the kernel and the wakeups cost the storm.
// PROCTRACK_EBPF_BURST_SLEEP (a duration) sets Config.Ebpf.BurstSleep, to
// compare the eBPF reader's caps.
func BenchmarkExecStormRounds(b *testing.B) {
	const n = 1000
	var cfg Config
	if s := os.Getenv("PROCTRACK_EBPF_BURST_SLEEP"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("PROCTRACK_EBPF_BURST_SLEEP: %v", err)
		}
		cfg.Ebpf.BurstSleep = d
	}
	for _, method := range []string{MethodEbpf, MethodNetlink, MethodAudit} {
		b.Run(method, func(b *testing.B) {
			var ratio, cpu, child []float64
			for b.Loop() {
				c0 := childrenCPU()
				base := storm(b, n, "base")
				c1 := childrenCPU()
				m := startOnly(b, method, cfg)
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						select {
						case <-m.Events():
						case <-stop:
							return
						}
					}
				}()
				s0, c2 := cpuTime(), childrenCPU()
				d := storm(b, n, "rounds")
				c3 := childrenCPU()
				time.Sleep(100 * time.Millisecond) // let the last events in
				s1 := cpuTime()
				close(stop)
				<-done
				m.Close()
				us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / n }
				ratio = append(ratio, base.Seconds()/d.Seconds())
				cpu = append(cpu, us(s1-s0))
				child = append(child, us((c3-c2)-(c1-c0)))
			}
			b.ReportMetric(median(ratio), "x-unmonitored")
			b.ReportMetric(slices.Min(ratio), "min-x")
			b.ReportMetric(slices.Max(ratio), "max-x")
			b.ReportMetric(median(cpu), "cpu-µs/exec")
			b.ReportMetric(median(child), "child-cpu-µs/exec")
		})
	}
}
