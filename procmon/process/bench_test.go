package process

import (
	"os"
	"os/exec"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
)

// BenchmarkFindProcess reads one whole process, as a firewall does for the
// owner of a connection it has not seen: self is the test binary itself (a
// Go process with several threads, where the kernel sums the threads for
// stat), sleep a single-threaded child with the test's environment;
// sleep+complete is FindProcess then Complete, what a caller pays when it
// needs the credentials, namespaces, cgroup and binary's stat as well.
func BenchmarkFindProcess(b *testing.B) {
	b.Run("self", func(b *testing.B) { benchFind(b, os.Getpid(), false) })
	sleep := proctest.RequireTool(b, "sleep")
	c := proctest.Start(b, exec.Command(sleep, "1000"))
	proctest.WaitComm(b, c.PID, sleep)
	b.Run("sleep", func(b *testing.B) { benchFind(b, c.PID, false) })
	b.Run("sleep+complete", func(b *testing.B) { benchFind(b, c.PID, true) })
}

// benchFind reports the CPU time per read (cpu-ns/op) beside the wall
// time: on a shared machine, other load stretches the latter more.
func benchFind(b *testing.B, pid int, complete bool) {
	b.ReportAllocs()
	n, cpu := 0, proctest.CPUTime()
	for b.Loop() {
		p := FindProcess(pid, false)
		if p == nil {
			b.Fatal("nil")
		}
		if complete {
			p.Complete()
		}
		n++
	}
	b.ReportMetric(float64(proctest.CPUTime()-cpu)/float64(n), "cpu-ns/op")
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
