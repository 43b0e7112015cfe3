package ebpf

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// cpuTimes returns the CPU time (user+system) of this process (all its
// threads) and of its waited-for children.
func cpuTimes(tb testing.TB) (self, children time.Duration) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		tb.Fatal(err)
	}
	return self, time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countSink counts every event, and the exec events of this process's
// children whose second argument has a prefix.
type countSink struct {
	prefix      string
	events, our atomic.Uint64
	lost        atomic.Uint64
}

func (c *countSink) Event(ev *process.Event) {
	c.events.Add(1)
	if ev.Kind == process.EventExec && ev.PPID == os.Getpid() && len(ev.Process.Args) == 2 &&
		strings.HasPrefix(ev.Process.Args[1], c.prefix) {
		c.our.Add(1)
	}
}
func (c *countSink) Lost(n uint64, _ string) { c.lost.Add(n) }

// BenchmarkExecStorm runs fork+exec+wait of /bin/true b.N times without the
// source and then with it, and reports the rates, the share of execs
// reported (capture-%), and CPU time per exec: of the test process
// (cpu-us/exec: its share of fork and wait, the fork program that runs in
// the parent, and the source's reader goroutine) and of the children
// (child-cpu-us/exec: exec and exit, with the exec and exit programs when
// the source runs). source-cpu-us/exec and bpf-child-us/exec are the
// differences the source makes.
func BenchmarkExecStorm(b *testing.B) {
	b.Run("gap-1ms", func(b *testing.B) { benchExecStorm(b, Config{}) })
	b.Run("every-record", func(b *testing.B) { benchExecStorm(b, Config{WakeupGap: -1}) })
	b.Run("batch-10ms", func(b *testing.B) { benchExecStorm(b, Config{BatchDelay: 10 * time.Millisecond}) })
	// sched_process_exec with a 100-value list that no exec of the storm
	// matches: every exec's path is walked again and each argument looked
	// up (compare exec-bpf-ns/run and bpf-child-us/exec with gap-1ms).
	b.Run("exec-sandbox-100", func(b *testing.B) {
		var vals []string
		for i := range 100 {
			vals = append(vals, strconv.Quote("--never-"+strconv.Itoa(i)))
		}
		set := ruleSet(b, rules.Spec{Hook: HookSchedProcessExec, Name: "Hundred",
			Event: "arg0 in [" + strings.Join(vals, ", ") + "]"})
		benchExecStorm(b, Config{Rules: set, Sandbox: map[string]SandboxMode{HookSchedProcessExec: SandboxDenyList}})
	})
}

func benchExecStorm(b *testing.B, cfg Config) {
	proctest.RequireRoot(b, "loading BPF programs")
	tag := "bench-" + strconv.Itoa(b.N) + "-"
	run := func(drained func()) (wall, self, children time.Duration) {
		s0, c0 := cpuTimes(b)
		t0 := time.Now()
		for i := range b.N {
			if err := exec.Command("/bin/true", tag+strconv.Itoa(i)).Run(); err != nil {
				b.Fatal(err)
			}
		}
		wall = time.Since(t0)
		drained()
		s1, c1 := cpuTimes(b)
		return wall, s1 - s0, c1 - c0
	}

	b.StopTimer()
	baseWall, baseSelf, baseChildren := run(func() {})

	// The kernel's per-program run time, for as long as the benchmark runs.
	stats, _ := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	sink := &countSink{prefix: tag}
	src := New(cfg)
	if err := src.Start(context.Background(), sink); err != nil {
		b.Fatalf("Start: %v", err)
	}
	b.StartTimer()
	wall, self, children := run(func() {
		deadline := time.Now().Add(5 * time.Second)
		for sink.our.Load() < uint64(b.N) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	})
	b.StopTimer()
	if stats != nil {
		for name, unit := range map[string]string{"handle_exec": "exec-bpf-ns/run", "handle_fork": "fork-bpf-ns/run",
			"handle_exit": "exit-bpf-ns/run", "handle_sys_exit": "sysexit-bpf-ns/run"} {
			if p := src.obj.coll.Programs[name]; p != nil {
				if st, err := p.Stats(); err == nil && st.RunCount > 0 {
					b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(st.RunCount), unit)
				}
			}
		}
		stats.Close()
	}
	if err := src.Close(); err != nil {
		b.Fatal(err)
	}
	n := float64(b.N)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / n }
	b.ReportMetric(100*float64(sink.our.Load())/n, "capture-%")
	b.ReportMetric(float64(sink.events.Load())/wall.Seconds(), "events/s")
	b.ReportMetric(n/wall.Seconds(), "execs/s")
	b.ReportMetric(n/baseWall.Seconds(), "base-execs/s")
	b.ReportMetric(us(self), "cpu-us/exec")
	b.ReportMetric(us(baseSelf), "base-cpu-us/exec")
	b.ReportMetric(us(self-baseSelf), "source-cpu-us/exec")
	b.ReportMetric(us(children), "child-cpu-us/exec")
	b.ReportMetric(us(children-baseChildren), "bpf-child-us/exec")
	if st := src.Stats(); st.Lost != 0 || st.Errors != 0 {
		b.Logf("lost %d, errors %d", st.Lost, st.Errors)
	}
}
