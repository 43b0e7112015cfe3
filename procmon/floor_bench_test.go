package procmon

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/floor"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// floorStormN is the size of each storm of BenchmarkNetlinkFloor: 5,000 by
// default (about 2 s here), PROCTRACK_STORM_N to change it (the issue's
// figures: 20,000).
func floorStormN(tb testing.TB) int {
	n := 5000
	if s := os.Getenv("PROCTRACK_STORM_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 2 {
			tb.Fatalf("PROCTRACK_STORM_N=%q: want a number of execs >= 2", s)
		}
		n = v
	}
	return n
}

// floorWorkers is the storm's number of worker processes (one per core of
// the machines here).
const floorWorkers = 2

// floorGapUS is the C floor's wakeup gap, the netlink reader's default.
const floorGapUS = "500"

// BenchmarkNetlinkFloor measures the netlink method in the monitor against
// its C floor (internal/floor's cnname: the proc connector and, per exec,
// the exe link, cmdline and stat; per fork the child's stat; a 500 µs
// wakeup gap) in the same run. Each round (one b.N iteration; more with
// -benchtime=5x) runs the storm (internal/floor's storm: fork+exec+wait of
// /bin/true from two workers) unmonitored, under cnname and under a Monitor
// running netlink with a consumer reading Events(), and reports, as
// medians over the rounds:
//   - x-unmonitored: the storm's rate against the unmonitored run of the
//     same round;
//   - cpu-µs/exec: the listener's CPU time per exec (getrusage: of cnname,
//     or of this process from the storm's start until its events are
//     drained);
//   - %named: the storm's children whose exec event names /usr/bin/true
//     with the arguments ["/bin/true"], matched by pid and identity (the
//     pids the storm wrote; the exec's start time the one the fork event of
//     the pid by a storm worker gave);
//   - named-wrong: those named with another path or arguments, or with
//     another identity than their fork's;
//   - start-off (monitor only): forked storm children whose start time is
//     more than one clock tick away from their fork event's time.
//
// The figures of the floor are prefixed floor-. PROCTRACK_NETLINK_GAP_US
// sets the monitor's netlink WakeupGap in µs (-1: none) for experiments;
// the floor keeps 500 µs.
func BenchmarkNetlinkFloor(b *testing.B) {
	proctest.RequireRoot(b, "the proc connector (CAP_NET_ADMIN)")
	n := floorStormN(b)
	stormBin, cnname := floor.Build(b, "storm"), floor.Build(b, "cnname")
	dir := b.TempDir()
	var (
		round                                int
		ratio, cpu, named, wrong             []float64
		fRatio, fCPU, fNamed, fWrong, starts []float64
	)
	for b.Loop() {
		round++
		prefix := filepath.Join(dir, "r"+strconv.Itoa(round))
		base := floor.Storm(b, stormBin, n, floorWorkers, prefix+"-base")

		l := floor.StartListener(b, cnname, prefix+"-floor", strconv.Itoa(floorWorkers), floorGapUS)
		rate := floor.Storm(b, stormBin, n, floorWorkers, prefix+"-floor")
		time.Sleep(200 * time.Millisecond) // let the last events in
		f := l.Stop(b)
		fRatio = append(fRatio, rate/base)
		fCPU = append(fCPU, f["cpu"]*1e6/float64(n))
		fNamed = append(fNamed, 100*f["named_right"]/float64(n))
		fWrong = append(fWrong, f["right_path_wrong_args"]+f["wrong_path"])

		r := netlinkStorm(b, stormBin, n, prefix+"-mon")
		ratio = append(ratio, r.rate/base)
		cpu = append(cpu, float64(r.cpu.Nanoseconds())/1e3/float64(n))
		named = append(named, 100*float64(r.named)/float64(r.children))
		wrong = append(wrong, float64(r.wrong))
		starts = append(starts, float64(r.startOff))
		b.Logf("round %d (load %s): unmonitored %.0f/s; floor %.2fx %.1f µs/exec %.1f%% named %v wrong; netlink %.2fx %.1f µs/exec %.1f%% named %d wrong %d start-off (%.2f voluntary context switches/exec, %d execs seen, %d incomplete, %d lost, %d dropped)",
			round, loadAvg(), base, fRatio[len(fRatio)-1], fCPU[len(fCPU)-1], fNamed[len(fNamed)-1], fWrong[len(fWrong)-1],
			ratio[len(ratio)-1], cpu[len(cpu)-1], named[len(named)-1], r.wrong, r.startOff, float64(r.switches)/float64(n), r.execs, r.incomplete, r.lost, r.dropped)
	}
	b.ReportMetric(median(ratio), "x-unmonitored")
	b.ReportMetric(median(cpu), "cpu-µs/exec")
	b.ReportMetric(median(named), "%named")
	b.ReportMetric(slices.Max(wrong), "named-wrong")
	b.ReportMetric(slices.Max(starts), "start-off")
	b.ReportMetric(median(fRatio), "floor-x-unmonitored")
	b.ReportMetric(median(fCPU), "floor-cpu-µs/exec")
	b.ReportMetric(median(fNamed), "floor-%named")
	b.ReportMetric(slices.Max(fWrong), "floor-named-wrong")
}

// median returns the median of v (the mean of the middle two for an even
// count).
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ctxSwitches returns the voluntary context switches of this process's
// threads: each is a thread that blocked, and most a wakeup to come.
func ctxSwitches() int64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Nvcsw
}

// loadAvg returns the 1-minute load average, for the benchmark's log.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil || len(b) < 4 {
		return "?"
	}
	f := string(b)
	for i, c := range f {
		if c == ' ' {
			return f[:i]
		}
	}
	return f
}

// floorResult is what netlinkStorm measured.
type floorResult struct {
	rate       float64       // the storm's execs per second
	cpu        time.Duration // this process's CPU from the storm's start until drained
	switches   int64         // and its voluntary context switches (a thread blocked)
	children   int           // the storm's distinct child pids
	execs      int           // storm children with an exec event
	named      int           // named right
	wrong      int           // named wrong (path, arguments or identity)
	incomplete int           // exec events of storm children marked Incomplete
	startOff   int           // forked children whose start time is off their fork's time
	lost       uint64
	dropped    uint64
}

// seenEv is what the consumer keeps of one event.
type seenEv struct {
	kind       EventKind
	pid, ppid  int
	key        process.Key
	path       string
	args       []string
	incomplete bool
	time       time.Time
}

// netlinkStorm runs the storm under a Monitor running netlink, with a
// consumer of Events(), and counts what the monitor named of it.
func netlinkStorm(b *testing.B, stormBin string, n int, prefix string) floorResult {
	b.Helper()
	var cfg Config
	if g := os.Getenv("PROCTRACK_NETLINK_GAP_US"); g != "" {
		us, err := strconv.Atoi(g)
		if err != nil {
			b.Fatalf("PROCTRACK_NETLINK_GAP_US=%q: want a number of µs (-1: no gap)", g)
		}
		cfg.Netlink.WakeupGap = time.Duration(us) * time.Microsecond
	}
	m := startOnly(b, MethodNetlink, cfg)
	defer m.Close()
	var (
		mu  sync.Mutex
		evs []seenEv
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range m.Events() {
			s := seenEv{kind: ev.Kind, pid: ev.PID, ppid: ev.PPID, time: ev.Time}
			if p := ev.Process; p != nil {
				s.key, s.path, s.args, s.incomplete = p.Key(), p.Path, p.Args, p.Incomplete
			}
			mu.Lock()
			evs = append(evs, s)
			mu.Unlock()
		}
	}()
	before := m.Stats()
	cpu0, sw0 := cpuTime(), ctxSwitches()
	cmd := exec.Command(stormBin, strconv.Itoa(n), strconv.Itoa(floorWorkers), prefix)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("storm: %v", err)
	}
	// Drain: until no event arrived for 300 ms, or at most 30 s.
	for last, end := uint64(0), time.Now().Add(30*time.Second); time.Now().Before(end); {
		time.Sleep(300 * time.Millisecond)
		if e := m.Stats().Events; e == last {
			break
		} else {
			last = e
		}
	}
	res := floorResult{rate: floor.Fields(string(out))["rate"], cpu: cpuTime() - cpu0, switches: ctxSwitches() - sw0}
	after := m.Stats()
	res.lost, res.dropped = after.Lost-before.Lost, after.Dropped-before.Dropped
	m.Close()
	<-done

	pids, err := floor.Pids(prefix, floorWorkers)
	if err != nil {
		b.Fatal(err)
	}
	storm := cmd.Process.Pid
	workers := map[int]bool{}
	forks := map[int]seenEv{} // storm children's fork events by pid
	for _, s := range evs {
		if s.kind == EventFork && s.ppid == storm {
			workers[s.pid] = true
		}
	}
	// The wall clock minus CLOCK_BOOTTIME, which start times count from.
	var bt unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt)
	bootWall := time.Now().UnixNano() - bt.Nano()
	const tick = int64(time.Second / 100)
	forkAt := map[int]int{} // and their index in evs
	for i, s := range evs {
		if s.kind != EventFork || !workers[s.ppid] {
			continue
		}
		forks[s.pid], forkAt[s.pid] = s, i
		if s.key.StartTicks != 0 {
			at := (s.time.UnixNano() - bootWall) / tick
			if d := at - int64(s.key.StartTicks); d < -1 || d > 1 {
				res.startOff++
			}
		}
	}
	truePath, _ := filepath.EvalSymlinks("/bin/true")
	want := map[int]bool{} // distinct: a pid the storm's children took twice (pids wrap) counts once, its last use
	for _, p := range pids {
		want[p] = true
	}
	res.children = len(want)
	counted := map[int]bool{}
	for i, s := range evs {
		// The pid's first exec after its fork by a storm worker (the pid
		// may have named other processes before: pids wrap at 32,768 on
		// some machines).
		if at, ok := forkAt[s.pid]; s.kind != EventExec || !want[s.pid] || counted[s.pid] || !ok || i < at {
			continue
		}
		counted[s.pid] = true
		if f := forks[s.pid]; f.key.StartTicks != 0 && s.key.StartTicks != 0 && s.key != f.key {
			res.wrong++ // another identity than its fork's
			b.Logf("exec of pid %d with identity %v, its fork's %v", s.pid, s.key, f.key)
			continue
		}
		res.execs++
		switch {
		case s.path == truePath && slices.Equal(s.args, []string{"/bin/true"}):
			res.named++
		case s.path != "" && s.path != truePath, len(s.args) > 0 && !slices.Equal(s.args, []string{"/bin/true"}):
			res.wrong++
			if res.wrong <= 5 {
				b.Logf("named wrong: pid %d %s %q (incomplete %v)", s.pid, s.path, s.args, s.incomplete)
			}
		default:
			res.incomplete++ // gone before it could be named (Incomplete, or an empty cmdline)
		}
	}
	return res
}
