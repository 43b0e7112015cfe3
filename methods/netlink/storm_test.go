package netlink

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// forkExecTrue forks and execs /bin/true with one argument, waits for it
// and returns its pid. It uses syscall.ForkExec rather than os/exec to keep
// the caller's own cost (pipes, goroutines) out of the measurements.
func forkExecTrue(arg string) (int, error) {
	pid, err := syscall.ForkExec("/bin/true", []string{"true", arg}, &syscall.ProcAttr{Env: []string{}})
	if err != nil {
		return 0, fmt.Errorf("fork/exec /bin/true: %w", err)
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return pid, fmt.Errorf("wait4 %d: %w", pid, err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return pid, fmt.Errorf("/bin/true %d: status %v", pid, ws)
	}
	return pid, nil
}

// runTrue is forkExecTrue failing tb on error.
func runTrue(tb testing.TB, arg string) int {
	pid, err := forkExecTrue(arg)
	if err != nil {
		tb.Fatal(err)
	}
	return pid
}

// storm runs n /bin/true processes, par at a time, and returns their pids.
func storm(tb testing.TB, n, par int, tag string) []int {
	pids := make([]int, n)
	var wg sync.WaitGroup
	for w := range par {
		wg.Go(func() {
			for i := w; i < n; i += par {
				pids[i] = runTrue(tb, tag+strconv.Itoa(i))
			}
		})
	}
	wg.Wait()
	return pids
}

// startSource starts a Source with sink and closes it at the end of the test.
func startSource(tb testing.TB, sink *recorder) *Source {
	return startSourceWith(tb, Config{}, sink)
}

// startSourceWith is startSource with a Config.
func startSourceWith(tb testing.TB, cfg Config, sink *recorder) *Source {
	tb.Helper()
	proctest.RequireRoot(tb, "the proc connector on older kernels and a 32 MiB SO_RCVBUFFORCE buffer")
	src := New(cfg)
	if err := src.Start(context.Background(), sink); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := src.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return src
}

// TestExecStorm checks that the fork, exec and exit of each of 5,000
// processes are reported, or that a loss was.
func TestExecStorm(t *testing.T) {
	const n = 5000
	proctest.RequireRoot(t, "the proc connector with a forced 32 MiB buffer")
	// The unmonitored rate, for comparison.
	start := time.Now()
	storm(t, n/5, 2, "base-")
	baseRate := float64(n/5) / time.Since(start).Seconds()

	sink := newRecorder()
	src := startSource(t, sink)
	start = time.Now()
	pids := storm(t, n, 2, "storm-")
	elapsed := time.Since(start)
	type seen struct{ fork, exec, exit bool }
	byPID := make(map[int]*seen, n)
	for _, pid := range pids {
		byPID[pid] = &seen{}
	}
	parent := unix.Getpid()
	var events []*process.Event
	var losses []string
	// Events are delivered asynchronously: wait until every exit is in,
	// or a loss was reported, or for 10 s.
	for deadline, next := time.Now().Add(10*time.Second), 0; ; {
		events, losses = sink.Snapshot()
		for _, ev := range events[next:] {
			s := byPID[ev.PID]
			if s == nil {
				continue
			}
			switch ev.Kind {
			case process.EventFork:
				s.fork = true
				if ev.PPID != parent || ev.TID != ev.PID {
					t.Errorf("fork of %d: ppid %d tid %d, want ppid %d", ev.PID, ev.PPID, ev.TID, parent)
				}
			case process.EventExec:
				s.exec = true
			case process.EventExit:
				s.exit = true
				if ev.ExitCode != 0 {
					t.Errorf("exit of %d: code %d", ev.PID, ev.ExitCode)
				}
			}
			if ev.Method != process.MethodNetlink || ev.Process != nil {
				t.Errorf("event %+v: method %q, process %v", ev, ev.Method, ev.Process)
			}
		}
		next = len(events)
		complete := true
		for _, s := range byPID {
			complete = complete && s.fork && s.exec && s.exit
		}
		if complete || len(losses) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var noFork, noExec, noExit int
	for _, s := range byPID {
		if !s.fork {
			noFork++
		}
		if !s.exec {
			noExec++
		}
		if !s.exit {
			noExit++
		}
	}
	c := src.Counters()
	t.Logf("unmonitored %.0f/s; monitored %.0f/s (x%.2f)", baseRate, float64(n)/elapsed.Seconds(), float64(n)/elapsed.Seconds()/baseRate)
	t.Logf("%d processes in %v (%.0f/s); %d events (%d messages), missing fork %d exec %d exit %d; losses %d %v; counters %+v; rcvbuf %d",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), len(events), c.Messages,
		noFork, noExec, noExit, len(losses), losses, c, src.RcvBuf())
	if noFork+noExec+noExit > 0 && len(losses) == 0 {
		t.Errorf("events missing without a reported loss: fork %d exec %d exit %d", noFork, noExec, noExit)
	}
	if len(losses) > 0 {
		t.Logf("the source reported losses: %v", losses)
	}
	if c.SeqGaps != 0 && c.Overflows == 0 {
		t.Errorf("%d sequence gaps without ENOBUFS: false positives?", c.SeqGaps)
	}
}

// TestSeqNoFalseGaps runs a storm of short processes from goroutines that
// are free to migrate between CPUs, with the reader kept busy, and checks
// that no sequence gap is reported unless the socket overflowed.
func TestSeqNoFalseGaps(t *testing.T) {
	sink := newRecorder()
	src := startSource(t, sink)
	par := 2 * runtime.NumCPU()
	storm(t, 3000, par, "seq-")
	time.Sleep(200 * time.Millisecond)
	c := src.Counters()
	_, losses := sink.Snapshot()
	t.Logf("%d workers: counters %+v, losses %v", par, c, losses)
	if c.Overflows == 0 && (c.SeqGaps != 0 || len(losses) != 0) {
		t.Errorf("sequence gaps without ENOBUFS: %d (%v)", c.SeqGaps, losses)
	}
	if c.SeqResets != 0 {
		t.Errorf("%d sequences went backwards", c.SeqResets)
	}
	if c.Messages < 3*3000 {
		t.Errorf("%d messages for 3000 processes", c.Messages)
	}
}

// slowSink delays its first events, so that the socket overflows.
type slowSink struct {
	*recorder
	delay time.Duration
	slow  int
	n     int
	fast  chan struct{} // closed when the slow events are past
}

func (s *slowSink) Event(ev *process.Event) {
	s.n++
	switch {
	case s.n <= s.slow:
		time.Sleep(s.delay)
	case s.n == s.slow+1:
		close(s.fast)
	}
	s.recorder.Event(ev)
}

// TestOverflow fills a tiny receive buffer behind a slow sink: the source
// must report ENOBUFS, count the missing messages as sequence gaps that
// cover every event it did not deliver, and keep reading.
func TestOverflow(t *testing.T) {
	proctest.RequireRoot(t, "the proc connector with a forced small buffer")
	rec := newRecorder()
	sink := &slowSink{recorder: rec, delay: 2 * time.Millisecond, slow: 100, fast: make(chan struct{})}
	src := New(Config{RcvBuf: 4096})
	if err := src.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const n = 300
	pids := storm(t, n, 2, "overflow-")
	// Once the sink is fast again, the source still works.
	for {
		select {
		case <-sink.fast:
		case <-time.After(10 * time.Millisecond):
			runTrue(t, "more") // events until the sink has seen enough
			continue
		}
		break
	}
	// A loss shows as a gap when the CPU's next message arrives: make
	// every CPU send one, running a process pinned to it.
	taskset := proctest.RequireTool(t, "taskset")
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	for prev := uint64(0); ; { // the reader has drained the socket
		time.Sleep(50 * time.Millisecond)
		m := src.Counters().Messages
		if m == prev {
			break
		}
		prev = m
	}
	for cpu := range 1024 {
		if !set.IsSet(cpu) {
			continue
		}
		pid := run(t, taskset, "-c", strconv.Itoa(cpu), "/bin/true")
		if rec.WaitFor(process.EventExit, pid, nil, 10*time.Second) == nil {
			t.Fatalf("no exit event for %d after the overflow; counters %+v, err %v", pid, src.Counters(), src.Err())
		}
	}
	events, losses := rec.Snapshot()
	got := map[int]int{}
	for _, ev := range events {
		switch ev.Kind {
		case process.EventFork, process.EventExec, process.EventExit:
			got[ev.PID]++
		}
	}
	missing := 0
	for _, pid := range pids {
		missing += 3 - got[pid]
	}
	c := src.Counters()
	overflowReported := false
	for _, l := range losses {
		if strings.HasSuffix(l, ReasonOverflow) {
			overflowReported = true
		}
	}
	t.Logf("rcvbuf %d: %d of %d events missing; counters %+v; %d loss reports", src.RcvBuf(), missing, 3*n, c, len(losses))
	if c.Overflows == 0 || !overflowReported {
		t.Fatalf("no ENOBUFS reported (overflows %d, losses %v)", c.Overflows, losses)
	}
	if c.SeqGaps == 0 || uint64(missing) > c.SeqGaps {
		t.Errorf("%d events missing, but sequence gaps count %d", missing, c.SeqGaps)
	}
	if st := src.Stats(); st.Lost != rec.LostCount() || st.LostTimes != uint64(len(losses)) || st.Lost < c.SeqGaps {
		t.Errorf("stats %+v vs counters %+v; the sink got %d lost in %d reports", st, c, rec.LostCount(), len(losses))
	}
}

// TestOverflowCountedAtReport: the loss an overflow caused is counted when
// the overflow is reported, not when each CPU happens to send its next
// message. The sink is stuck while a storm overflows a tiny buffer and the
// storm ends before the reader goes on, so no later message reveals the
// gaps: before the fix the overflow was reported as Lost(0) and the
// messages dropped at the end of the storm were never counted.
func TestOverflowCountedAtReport(t *testing.T) {
	proctest.RequireRoot(t, "the proc connector with a forced small buffer")
	rec := newRecorder()
	rec.Block = make(chan struct{})
	src := New(Config{RcvBuf: 4096})
	if err := src.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const n = 300
	pids := storm(t, n, 2, "report-")
	close(rec.Block)
	missing := func() int {
		events, _ := rec.Snapshot()
		got := map[int]int{}
		for _, ev := range events {
			switch ev.Kind {
			case process.EventFork, process.EventExec, process.EventExit:
				got[ev.PID]++
			}
		}
		m := 0
		for _, pid := range pids {
			m += 3 - got[pid]
		}
		return m
	}
	// The reader delivers what the socket held, then reports the
	// overflow: by then the count covers every event missing, without
	// anything else running.
	reported := func() bool {
		_, losses := rec.Snapshot()
		return slices.ContainsFunc(losses, func(l string) bool { return strings.HasSuffix(l, ReasonOverflow) })
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && !reported(); {
		time.Sleep(time.Millisecond)
	}
	lost, m := rec.LostCount(), missing()
	_, losses := rec.Snapshot()
	c := src.Counters()
	t.Logf("%d of %d events missing, %d reported lost; counters %+v; reports %v", m, 3*n, lost, c, losses)
	overflows := 0
	for _, l := range losses {
		if strings.HasSuffix(l, ReasonOverflow) {
			overflows++
			if strings.HasPrefix(l, "0: ") {
				t.Errorf("an overflow reported as 0 lost: %q", l)
			}
		}
	}
	if c.Overflows == 0 || overflows == 0 {
		t.Fatalf("no overflow reported (counters %+v, losses %v)", c, losses)
	}
	if lost < uint64(m) {
		t.Errorf("%d events missing when the overflow was reported, %d reported lost", m, lost)
	}
	if st := src.Stats(); st.Lost != rec.LostCount() || st.LostTimes != uint64(len(losses)) {
		t.Errorf("stats %+v, the sink got %d lost in %d reports", st, rec.LostCount(), len(losses))
	}
	if c.Probes == 0 {
		t.Error("no probe counted")
	}
	if probes := rec.All(process.EventComm, unix.Getpid()); len(probes) > 0 {
		t.Errorf("the probe's comm events were delivered: %+v", probes[0])
	}
}

// timedSink is a slow sink that notes when each loss was reported.
type timedSink struct {
	*recorder
	delay time.Duration
	mu    sync.Mutex
	at    []time.Time
	ns    []uint64
}

func (s *timedSink) Event(ev *process.Event) {
	time.Sleep(s.delay)
	s.recorder.Event(ev)
}

func (s *timedSink) Lost(n uint64, reason string) {
	s.mu.Lock()
	s.at, s.ns = append(s.at, time.Now()), append(s.ns, n)
	s.mu.Unlock()
	s.recorder.Lost(n, reason)
}

// TestOverflowReportedDuringStorm: while the socket never empties (a sink
// slower than the storm), an overflow is still reported, with a count,
// before the storm ends: the probe and the report do not wait for a drain.
func TestOverflowReportedDuringStorm(t *testing.T) {
	proctest.RequireRoot(t, "the proc connector with a forced small buffer")
	sink := &timedSink{recorder: newRecorder(), delay: 3 * time.Millisecond}
	src := New(Config{RcvBuf: 4096})
	if err := src.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	storm(t, 3000, 2, "during-")
	end := time.Now()
	sink.mu.Lock()
	at, ns := slices.Clone(sink.at), slices.Clone(sink.ns)
	sink.mu.Unlock()
	during := 0
	for _, a := range at {
		if a.Before(end) {
			during++
		}
	}
	t.Logf("%d loss reports, %d before the storm ended; counters %+v", len(at), during, src.Counters())
	if len(at) == 0 || !at[0].Before(end) {
		t.Fatalf("no loss reported during the storm (counters %+v)", src.Counters())
	}
	for i, n := range ns {
		if n == 0 {
			t.Errorf("report %d counted 0 lost", i)
		}
	}
}
