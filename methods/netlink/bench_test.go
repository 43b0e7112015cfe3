package netlink

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// cpuTime returns the process's user+system CPU time (all threads, not the
// children).
func cpuTime(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countSink counts events and discards them.
type countSink struct{ events, lost int }

func (c *countSink) Event(*process.Event) { c.events++ }
func (c *countSink) Lost(uint64, string)  { c.lost++ }

// BenchmarkExecStorm runs fork+exec+wait of /bin/true b.N times without
// the source and then with it, and reports the rates and the CPU time the
// test process spent per exec in each run (getrusage RUSAGE_SELF: the
// parent's share of fork and wait, plus the source's reader goroutine when
// it runs). source-cpu-us/exec, the difference, is the source's own cost.
func BenchmarkExecStorm(b *testing.B) {
	b.Run("gap-500us", func(b *testing.B) { benchExecStorm(b, Config{}) })
	b.Run("every-message", func(b *testing.B) { benchExecStorm(b, Config{WakeupGap: -1}) })
}

func benchExecStorm(b *testing.B, cfg Config) {
	proctest.RequireRoot(b, "the proc connector with a forced 32 MiB buffer")
	tag := "bench-" + strconv.Itoa(b.N) + "-"
	// run returns the storm's wall time, and the CPU time from its start
	// until drained returns.
	run := func(drained func()) (time.Duration, time.Duration) {
		c0, t0 := cpuTime(b), time.Now()
		for i := range b.N {
			runTrue(b, tag+strconv.Itoa(i))
		}
		wall := time.Since(t0)
		drained()
		return wall, cpuTime(b) - c0
	}

	b.StopTimer()
	baseWall, baseCPU := run(func() {})

	sink := &countSink{}
	src := New(cfg)
	if err := src.Start(context.Background(), sink); err != nil {
		b.Fatalf("Start: %v", err)
	}
	b.StartTimer()
	wall, cpu := run(func() {
		// Let the reader catch up: its work counts.
		deadline := time.Now().Add(5 * time.Second)
		for src.Counters().Messages < uint64(3*b.N) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	})
	b.StopTimer()
	// Close waits for the reader: the counters below are final.
	if err := src.Close(); err != nil {
		b.Fatal(err)
	}
	n := float64(b.N)
	c := src.Counters()
	b.ReportMetric(float64(sink.events)/wall.Seconds(), "events/s")
	b.ReportMetric(n/wall.Seconds(), "execs/s")
	b.ReportMetric(n/baseWall.Seconds(), "base-execs/s")
	b.ReportMetric(baseWall.Seconds()/wall.Seconds(), "rate-ratio")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/n, "cpu-us/exec")
	b.ReportMetric(float64(baseCPU.Nanoseconds())/1e3/n, "base-cpu-us/exec")
	b.ReportMetric(float64((cpu-baseCPU).Nanoseconds())/1e3/n, "source-cpu-us/exec")
	if sink.lost != 0 || c.Errors != 0 {
		b.Logf("losses %d, errors %d", sink.lost, c.Errors)
	}
}

// benchDatagram is one exec message as the kernel sends it.
func benchDatagram() []byte {
	return buildMsg(msgSpec{seq: 7, cpu: 1, what: whatExec, ts: 123456789, d: [6]uint32{4242, 4242}})
}

// BenchmarkParse measures decoding one message (no event built).
func BenchmarkParse(b *testing.B) {
	dg := benchDatagram()
	var m message
	var n int
	visit := func(*message) { n++ }
	b.ReportAllocs()
	for b.Loop() {
		if parse(dg, &m, visit) != 0 {
			b.Fatal("bad message")
		}
	}
	if n == 0 {
		b.Fatal("no message")
	}
}

// BenchmarkParseEvent measures decoding one message and building its Event
// (the one allocation per event).
func BenchmarkParseEvent(b *testing.B) {
	dg := benchDatagram()
	var m message
	var ev *process.Event
	visit := func(m *message) { ev, _ = toEvent(m, 0) }
	b.ReportAllocs()
	for b.Loop() {
		parse(dg, &m, visit)
	}
	if ev == nil || ev.PID != 4242 {
		b.Fatalf("event %+v", ev)
	}
}

// BenchmarkSourceCPU measures the source alone: the storm of b.N
// fork+exec+wait of /bin/true runs in a child process (the test binary in
// storm mode), so the CPU time of this process (getrusage RUSAGE_SELF) is
// the source's: its reader goroutine and the Go runtime waking it up.
// This is the worst case for the runtime, which is otherwise idle and
// wakes for every message.
func BenchmarkSourceCPU(b *testing.B) {
	proctest.RequireRoot(b, "the proc connector with a forced 32 MiB buffer")
	sink := &countSink{}
	src := New(Config{})
	if err := src.Start(context.Background(), sink); err != nil {
		b.Fatalf("Start: %v", err)
	}
	cmd := exec.Command(testBinary(b))
	cmd.Env = append(cmd.Environ(), stormEnv+"="+strconv.Itoa(b.N))
	c0, t0 := cpuTime(b), time.Now()
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("storm: %v", err)
	}
	wall := time.Since(t0)
	var first, last int
	if _, err := fmt.Sscan(string(out), &first, &last); err != nil {
		b.Fatalf("storm printed %q: %v", out, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for src.Counters().Messages < uint64(3*b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cpu := cpuTime(b) - c0
	b.StopTimer()
	if err := src.Close(); err != nil {
		b.Fatal(err)
	}
	c := src.Counters()
	n := float64(b.N)
	b.ReportMetric(n/wall.Seconds(), "execs/s")
	b.ReportMetric(float64(sink.events)/wall.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/n, "source-cpu-us/exec")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(c.Messages), "cpu-us/msg")
	b.ReportMetric(float64(c.Messages)/float64(c.Batches), "msgs/batch")
	if sink.lost != 0 || c.Errors != 0 {
		b.Logf("losses %d, errors %d", sink.lost, c.Errors)
	}
}
