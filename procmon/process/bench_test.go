package process

import (
	"os"
	"testing"
)

// BenchmarkFindProcess reads one whole process (the test binary itself:
// a Go process with a few threads, its environment and cgroup).
func BenchmarkFindProcess(b *testing.B) {
	pid := os.Getpid()
	b.ReportAllocs()
	for b.Loop() {
		if FindProcess(pid, false) == nil {
			b.Fatal("nil")
		}
	}
}

// BenchmarkFindProcessAll reads every process on the machine once per
// iteration and reports the cost per process.
func BenchmarkFindProcessAll(b *testing.B) {
	pids, err := PIDs()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, pid := range pids {
			FindProcess(pid, false)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pids)), "ns/process")
}

// BenchmarkNewProcess is the identity-only read (stat) event sources use.
func BenchmarkNewProcess(b *testing.B) {
	pid := os.Getpid()
	b.ReportAllocs()
	for b.Loop() {
		NewProcess(pid, "")
	}
}
