package audit

import (
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/proctrack/proctrack/procmon/process"
	"golang.org/x/sys/unix"
)

// countSink counts the events, and the exec events whose last argument
// has prefix.
type countSink struct {
	prefix      string
	execs, used atomic.Int64
}

func (c *countSink) Event(ev *process.Event) {
	c.used.Add(1)
	if ev.Kind == process.EventExec && ev.Process != nil && len(ev.Process.Args) > 1 &&
		strings.HasPrefix(ev.Process.Args[len(ev.Process.Args)-1], c.prefix) {
		c.execs.Add(1)
	}
}
func (c *countSink) Lost(uint64, string) {}

func cpuTime(who int) time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExecStorm runs b.N execs of /bin/true, two at a time, with the
// source running and without it, and reports: execs/s; events/s through
// the source (every event it delivered, exec and exit, over the time until
// the last exec was reported); the CPU time per exec of the test process
// (which runs the source) and of the children (where the kernel's audit
// work for their system calls is accounted).
func BenchmarkExecStorm(b *testing.B) {
	for _, withSource := range []bool{false, true} {
		name := "without-source"
		if withSource {
			name = "with-source"
		}
		b.Run(name, func(b *testing.B) {
			guardAudit(b)
			sink := &countSink{prefix: fmt.Sprintf("bench-%d-", time.Now().UnixNano())}
			var src *Source
			if withSource {
				src = startSource(b, Config{Logger: slog.New(slog.DiscardHandler)}, sink)
			}
			self0, child0 := cpuTime(unix.RUSAGE_SELF), cpuTime(unix.RUSAGE_CHILDREN)
			b.ResetTimer()
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if err := exec.Command("/bin/true", sink.prefix+strconv.FormatInt(i, 10)).Run(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			execTime := time.Since(start)
			if withSource {
				for deadline := time.Now().Add(time.Minute); sink.execs.Load() < int64(b.N) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			total := time.Since(start)
			b.StopTimer()
			self, child := cpuTime(unix.RUSAGE_SELF)-self0, cpuTime(unix.RUSAGE_CHILDREN)-child0
			n := float64(b.N)
			b.ReportMetric(n/execTime.Seconds(), "execs/s")
			b.ReportMetric(float64(self.Microseconds())/n, "self-cpu-us/exec")
			b.ReportMetric(float64(child.Microseconds())/n, "child-cpu-us/exec")
			if withSource {
				if got := sink.execs.Load(); got < int64(b.N) {
					b.Errorf("%d of %d execs reported", got, b.N)
				}
				// Our execs and exits, and everything the source delivered
				// (other processes on the host included).
				b.ReportMetric(float64(2*b.N)/total.Seconds(), "events/s")
				b.ReportMetric(float64(src.Stats().Events)/total.Seconds(), "all-events/s")
			}
		})
	}
}

// discardSink drops the events.
type discardSink struct{ n int }

func (d *discardSink) Event(*process.Event) { d.n++ }
func (d *discardSink) Lost(uint64, string)  {}

// BenchmarkReceive runs the datagrams of an exec of /bin/true and of its
// exit, as this kernel writes them, through the receive path (record
// parsing, grouping, conversion) into a sink that drops the events: the
// Source's CPU and allocations per exec without a kernel.
func BenchmarkReceive(b *testing.B) {
	s := New(Config{})
	sink := &discardSink{}
	st := s.newStream(sink)
	exec := []rec{
		{auparse.AUDIT_SYSCALL, recExecSyscall}, {auparse.AUDIT_EXECVE, recExecve},
		{auparse.AUDIT_CWD, recCwd}, {auparse.AUDIT_PATH, recPath0}, {auparse.AUDIT_PATH, recPath1},
		{auparse.AUDIT_PROCTITLE, recProctitle}, {auparse.AUDIT_EOE, ""},
	}
	exit := []rec{{auparse.AUDIT_SYSCALL, recExitGroup}, {auparse.AUDIT_PROCTITLE, recProctitle}, {auparse.AUDIT_EOE, ""}}
	const events = 64
	var grams [][]byte
	for i := range events {
		recs := exec
		if i%2 == 1 {
			recs = exit
		}
		for _, r := range recs {
			grams = append(grams, datagram(uint16(r.typ), "audit(1795452112.527:"+strconv.Itoa(100+i)+"): "+r.body))
		}
	}
	b.ReportAllocs()
	now := time.Now()
	for b.Loop() {
		for _, g := range grams {
			s.handle(st, g, now)
		}
	}
	if sink.n == 0 {
		b.Fatal("no events")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N*events/2), "µs/exec")
}
