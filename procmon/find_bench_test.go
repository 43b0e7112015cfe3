package procmon

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/proctrack/proctrack/cache"
	"github.com/proctrack/proctrack/procmon/process"
)

// BenchmarkFindProcess is procmon.FindProcess of this test process: with
// no monitor running (a /proc read, process.FindProcess), and with one
// running, answered from its cache ("cached") or with the entry removed
// before each call ("cold": /proc read once, then put into the cache, its
// parent found there). cpu-ns/op is the CPU time of the whole test process
// per call (getrusage), steadier than ns/op on a machine busy with other
// work; it is not reported for cold, whose removal of the entry between
// calls it would count.
func BenchmarkFindProcess(b *testing.B) {
	pid := os.Getpid()
	find := func(b *testing.B) {
		if FindProcess(pid, false) == nil {
			b.Fatal("nil")
		}
	}
	loop := func(b *testing.B) {
		b.ReportAllocs()
		c0 := cpuTime()
		for b.Loop() {
			find(b)
		}
		b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.Run("no-monitor", loop)
	c := cache.New(cache.Config{GracePeriod: time.Nanosecond})
	m, err := New(Config{Method: MethodProc, ProcInterval: time.Hour, Cache: c})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	key, err := process.CurrentKey(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", loop)
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			c.Exit(key)
			c.DeleteOldItems()
			if _, ok := c.Get(key); ok {
				b.Fatal("still cached")
			}
			b.StartTimer()
			find(b)
		}
	})
}
