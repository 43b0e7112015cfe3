package audit_test

import (
	"bufio"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/floor"
	"github.com/proctrack/proctrack/methods/audit"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
	"golang.org/x/sys/unix"
)

var floorExecs = flag.Int("audit.floor.execs", 3000, "execs per storm of BenchmarkAuditFloor (the issue's figures: 20000)")

// namer records which pids an exec event named as the storm's children
// (/bin/true resolved, arguments ["/bin/true"]); safe for concurrent use.
type namer struct {
	truePath string
	mu       sync.Mutex
	named    map[int]bool // pid: named right (false: reported, named wrong)
}

func (n *namer) exec(ev *process.Event) {
	if ev.Kind != process.EventExec || ev.Process == nil {
		return
	}
	p := ev.Process
	right := p.Path == n.truePath && slices.Equal(p.Args, []string{"/bin/true"})
	n.mu.Lock()
	if _, seen := n.named[ev.PID]; !seen {
		n.named[ev.PID] = right
	}
	n.mu.Unlock()
}

// Event and Lost make namer a methods.Sink.
func (n *namer) Event(ev *process.Event) { n.exec(ev) }
func (n *namer) Lost(uint64, string)     {}

// count returns how many of pids were reported, and named right.
func (n *namer) count(pids []int) (reported, right int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range pids {
		if r, ok := n.named[p]; ok {
			reported++
			if r {
				right++
			}
		}
	}
	return reported, right
}

// stormFigures are one storm's figures under one listener.
type stormFigures struct {
	ratio, cpuUs, named, allocs float64
}

// selfCPU is this process's CPU time.
func selfCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle waits until n stops growing (the last records of a storm read),
// at most 30 s.
func settle(n func() int) {
	for last, end := -1, time.Now().Add(30*time.Second); time.Now().Before(end); {
		time.Sleep(200 * time.Millisecond)
		cur := n()
		if cur == last {
			return
		}
		last = cur
	}
}

// BenchmarkAuditFloor measures, in rounds (one per iteration; 5 for the
// README: -benchtime 5x), the storm of internal/floor (execs of /bin/true
// from 2 workers, -audit.floor.execs each) unmonitored, under the C floor
// of an audit method (auditfloor: the same rules, the same transport and
// the same 500 µs wakeup gap, receiving the records and naming the execs
// from them with the least parsing), under a Monitor running the audit
// method with a consumer of Events(), and under the audit Source alone.
// For each it reports the storm rate against the unmonitored run of the
// same round (x), the listener's CPU per exec (µs, getrusage) and the
// share of the storm's execs named right (%), averaged over the rounds.
func BenchmarkAuditFloor(b *testing.B) {
	audit.GuardAudit(b)
	stormBin := floor.Build(b, "storm")
	floorBin := floor.Build(b, "auditfloor")
	dir := b.TempDir()
	rules := filepath.Join(dir, "rules")
	audit.WriteFloorRules(b, rules)
	truePath, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		b.Skipf("/bin/true: %v", err)
	}
	n := *floorExecs
	const workers = 2
	quiet := slog.New(slog.DiscardHandler)
	names := []string{"floor", "monitor", "source"}
	sums := map[string]*stormFigures{}
	for _, k := range names {
		sums[k] = &stormFigures{}
	}
	rounds := 0
	for b.Loop() {
		rounds++
		base := floor.Storm(b, stormBin, n, workers, "")
		add := func(name string, rate, cpu float64, right int, allocs uint64) {
			f := stormFigures{rate / base, cpu * 1e6 / float64(n), 100 * float64(right) / float64(n), float64(allocs) / float64(n)}
			b.Logf("round %d %-7s %.2fx %.1f µs/exec %.1f%% named right %.1f allocs/exec", rounds, name, f.ratio, f.cpuUs, f.named, f.allocs)
			s := sums[name]
			s.ratio += f.ratio
			s.cpuUs += f.cpuUs
			s.named += f.named
			s.allocs += f.allocs
		}

		// The C floor.
		prefix := filepath.Join(dir, "floor"+strconv.Itoa(rounds))
		res, rate := runFloor(b, floorBin, rules, prefix, func() float64 {
			return floor.Storm(b, stormBin, n, workers, prefix)
		})
		if res["restore_errors"] != 0 || res["storm"] != float64(n) {
			b.Fatalf("auditfloor: %v", res)
		}
		b.Logf("round %d auditfloor: %v", rounds, res)
		add("floor", rate, res["cpu"], int(res["named_right"]), 0)

		// The Monitor with the audit method and a consumer. The goroutines
		// of each listener carry its name in CPU profiles (pprof
		// -tagfocus listener=monitor).
		label("monitor")
		nm := &namer{truePath: truePath, named: map[int]bool{}}
		m, err := procmon.New(procmon.Config{Method: procmon.MethodAudit, EventBuffer: 1 << 16, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		if m.Method() != procmon.MethodAudit {
			m.Close()
			b.Skipf("the audit method does not run here: %+v", m.Status().Methods)
		}
		var events sync.WaitGroup
		events.Add(1)
		go func() {
			defer events.Done()
			for ev := range m.Events() {
				nm.exec(&ev)
			}
		}()
		rate, cpu, right, allocs := measure(b, stormBin, n, workers, filepath.Join(dir, "monitor"+strconv.Itoa(rounds)), nm, func() int { return int(m.Stats().Events) })
		add("monitor", rate, cpu, right, allocs)
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		events.Wait()

		// The audit Source alone, naming in its sink.
		label("source")
		ns := &namer{truePath: truePath, named: map[int]bool{}}
		src := audit.New(audit.Config{Logger: quiet})
		if err := src.Start(context.Background(), ns); err != nil {
			b.Fatal(err)
		}
		rate, cpu, right, allocs = measure(b, stormBin, n, workers, filepath.Join(dir, "source"+strconv.Itoa(rounds)), ns, func() int { return int(src.Stats().Events) })
		add("source", rate, cpu, right, allocs)
		if err := src.Close(); err != nil {
			b.Fatal(err)
		}
		label("")
	}
	for _, k := range names {
		s := sums[k]
		r := float64(rounds)
		b.ReportMetric(s.ratio/r, k+"-x")
		b.ReportMetric(s.cpuUs/r, k+"-cpu-µs/exec")
		b.ReportMetric(s.named/r, k+"-%named")
		if k != "floor" {
			b.ReportMetric(s.allocs/r, k+"-allocs/exec")
		}
	}
}

// label sets the pprof label "listener" of this goroutine, which the
// goroutines it starts inherit ("": none).
func label(name string) {
	ctx := context.Background()
	if name != "" {
		ctx = pprof.WithLabels(ctx, pprof.Labels("listener", name))
	}
	pprof.SetGoroutineLabels(ctx)
}

// measure runs the storm with prefix under a listener of this process that
// names into nm and counts its events with events; it returns the storm's
// rate, this process's CPU seconds from the storm's start until the events
// settled, how many of the storm's execs nm named right, and the heap
// allocations of this process meanwhile.
func measure(b *testing.B, stormBin string, n, workers int, prefix string, nm *namer, events func() int) (float64, float64, int, uint64) {
	b.Helper()
	cpu0, m0 := selfCPU(), mallocs()
	rate := floor.Storm(b, stormBin, n, workers, prefix)
	settle(events)
	cpu, allocs := selfCPU()-cpu0, mallocs()-m0
	pids, err := floor.Pids(prefix, workers)
	if err != nil {
		b.Fatal(err)
	}
	_, right := nm.count(pids)
	return rate, cpu.Seconds(), right, allocs
}

// mallocs is the number of heap allocations this process has made.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// runFloor starts auditfloor with the rules and pid prefix, runs storm once
// it is ready, stops it once its records settled (its CPU time stops
// growing) and returns its RESULT fields and the storm's rate.
func runFloor(b testing.TB, bin, rules, prefix string, storm func() float64) (map[string]float64, float64) {
	b.Helper()
	cmd := exec.Command(bin, rules, "500", prefix, "2")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(out)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "ready") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatalf("auditfloor: %q %v: %s", line, err, stderr.String())
	}
	rate := storm()
	settle(func() int { return int(procCPU(cmd.Process.Pid)) })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("auditfloor: %v: %s%s", err, rest, stderr.String())
	}
	return floor.Fields(string(rest)), rate
}

// procCPU is the CPU time of process pid in clock ticks (utime+stime of
// /proc/<pid>/stat), -1 when unreadable.
func procCPU(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	i := strings.LastIndexByte(string(b), ')')
	if err != nil || i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:])) // from field 3, state
	if len(f) < 13 {
		return -1
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// TestAuditFloor: the C floor names every exec of a small storm from the
// records of the method's rules, and leaves the audit state as it found it.
func TestAuditFloor(t *testing.T) {
	audit.GuardAudit(t)
	stormBin := floor.Build(t, "storm")
	floorBin := floor.Build(t, "auditfloor")
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	audit.WriteFloorRules(t, rules)
	prefix := filepath.Join(dir, "pids")
	const n = 200
	res, _ := runFloor(t, floorBin, rules, prefix, func() float64 { return floor.Storm(t, stormBin, n, 2, prefix) })
	t.Logf("%v", res)
	if res["storm"] != n || res["named_right"] != n || res["restore_errors"] != 0 || res["rules"] == 0 {
		t.Errorf("auditfloor named %v of %d execs right (restore errors %v, rules %v)", res["named_right"], n, res["restore_errors"], res["rules"])
	}
}
