package procmon

import (
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// loneExecSpacing is the quiet time between two lone execs: well over every
// method's wakeup gap, so that each exec is the first event after a quiet
// spell (other processes of the machine aside).
const loneExecSpacing = 20 * time.Millisecond

// loneExecLatencies runs n lone fork+execs of /bin/true under m, one at a
// time, loneExecSpacing apart, and returns for each the time from just
// before the fork to the consumer's receipt of its exec event from
// m.Events(), sorted, and the time the fork+exec itself took (until
// exec.Cmd.Start returned, by when the child has exec'd), sorted. An exec
// event that does not come within two seconds fails tb.
func loneExecLatencies(tb testing.TB, m *Monitor, n int) (lat, starts []time.Duration) {
	tb.Helper()
	var (
		mu   sync.Mutex
		got  = map[int]time.Time{} // pid -> receipt of its last exec event
		poke = make(chan struct{}, 1)
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-m.Events():
				if !ok {
					return
				}
				if ev.Kind != EventExec {
					continue
				}
				now := time.Now()
				mu.Lock()
				got[ev.PID] = now
				mu.Unlock()
				select {
				case poke <- struct{}{}:
				default:
				}
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range n {
		time.Sleep(loneExecSpacing)
		cmd := exec.Command("/bin/true", "lone-"+strconv.Itoa(i))
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		starts = append(starts, time.Since(t0))
		pid := cmd.Process.Pid
		timeout := time.After(2 * time.Second)
		for {
			mu.Lock()
			at, ok := got[pid]
			mu.Unlock()
			if ok && at.After(t0) {
				lat = append(lat, at.Sub(t0))
				break
			}
			select {
			case <-poke:
			case <-timeout:
				_ = cmd.Wait()
				tb.Fatalf("exec %d (pid %d): no exec event within 2 s", i, pid)
			}
		}
		if err := cmd.Wait(); err != nil {
			tb.Fatal(err)
		}
	}
	slices.Sort(lat)
	slices.Sort(starts)
	return lat, starts
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencyMethods are the methods that deliver events as they happen.
var latencyMethods = []string{MethodEbpf, MethodNetlink, MethodAudit}

// TestLoneExecLatency: under the default settings, a lone exec reaches the
// consumer within a few milliseconds on every event method (the bound is
// generous for a shared machine: 18 of 20 lone execs within 20 ms). eBPF's
// reader once rounded its wakeup gap down to a zero-length wait and then
// slept 200 ms: most lone execs came about 200 ms late.
func TestLoneExecLatency(t *testing.T) {
	for _, method := range latencyMethods {
		t.Run(method, func(t *testing.T) {
			m := startOnly(t, method, Config{})
			defer m.Close()
			lat, _ := loneExecLatencies(t, m, 20)
			p90 := percentile(lat, 90)
			t.Logf("%s: p50 %v, p90 %v, max %v", method, percentile(lat, 50), p90, lat[len(lat)-1])
			if p90 > 20*time.Millisecond {
				t.Errorf("%s: 10%% of lone execs reach the consumer %v late or later (all: %v)", method, p90, lat)
			}
		})
	}
}

// BenchmarkLoneExecLatency reports, per method, the delay from just before
// a lone fork+exec to the consumer's receipt of its exec event (100 lone
// execs per iteration): p50, p99 and max, what the README's Reliability
// section quotes, and the median time of the fork+exec itself (start-ms),
// which the delays include.
func BenchmarkLoneExecLatency(b *testing.B) {
	for _, method := range latencyMethods {
		b.Run(method, func(b *testing.B) {
			m := startOnly(b, method, Config{})
			defer m.Close()
			var lat, starts []time.Duration
			for b.Loop() {
				l, s := loneExecLatencies(b, m, 100)
				lat, starts = append(lat, l...), append(starts, s...)
			}
			slices.Sort(lat)
			slices.Sort(starts)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
			b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
			b.ReportMetric(ms(percentile(starts, 50)), "start-ms")
		})
	}
}
