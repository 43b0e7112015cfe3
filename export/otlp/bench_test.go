package otlp_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/export/otlp"
	"github.com/proctrack/proctrack/internal/otlptest"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
)

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestHelperEndpoint is not a test: run by the benchmarks in a process of
// its own (so that decoding the records is not counted as the exporter's
// cost), it serves an OTLP endpoint, prints its addresses and waits for its
// standard input to close.
func TestHelperEndpoint(t *testing.T) {
	if os.Getenv("PROCTRACK_OTLP_HELPER") != "1" {
		t.Skip("the benchmarks' endpoint process")
	}
	ep := otlptest.Start(t)
	fmt.Printf("endpoint %s %s\n", ep.GRPCAddr, ep.HTTPAddr)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// helperEndpoint starts TestHelperEndpoint in a child process and returns
// its gRPC and HTTP addresses.
func helperEndpoint(b *testing.B) (grpcAddr, httpAddr string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEndpoint$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), "PROCTRACK_OTLP_HELPER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "endpoint" {
			go func() { // drain the rest
				for sc.Scan() {
				}
			}()
			return f[1], f[2]
		}
	}
	b.Fatal("the endpoint process did not start")
	return "", ""
}

// BenchmarkExecStormExport is procmon's BenchmarkExecStorm with and
// without the export, in the same run: a storm of execs of /bin/true under
// the best method, the consumer of Events either only receiving ("none") or
// exporting every event over OTLP/gRPC or OTLP/HTTP to an endpoint in
// another process. It reports the monitor process's CPU per exec and per
// event, and what the export added per event.
func BenchmarkExecStormExport(b *testing.B) {
	const n = 1000
	m, err := procmon.New(procmon.Config{EventBuffer: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Skipf("no method starts here: %v", err)
	}
	defer m.Close()
	if m.Method() == procmon.MethodProc {
		b.Skip("only the proc method runs here")
	}
	grpcAddr, httpAddr := helperEndpoint(b)
	var base float64 // CPU µs per event without export
	for _, mode := range []string{"none", otlp.GRPC, otlp.HTTP} {
		b.Run(m.Method()+"/"+mode, func(b *testing.B) {
			var e *otlp.Exporter
			if mode != "none" {
				addr := grpcAddr
				if mode == otlp.HTTP {
					addr = httpAddr
				}
				e, err = otlp.New(context.Background(), otlp.Config{Endpoint: addr, Protocol: mode, Insecure: true, QueueSize: 1 << 16})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case ev := <-m.Events():
						if e != nil {
							e.Export(&ev)
						}
					}
				}
			}()
			var cpu time.Duration
			var events uint64
			var st otlp.Stats
			for b.Loop() {
				c0, ev0 := cpuTime(), m.Stats().Events
				var exp0 otlp.Stats
				if e != nil {
					exp0 = e.Stats()
				}
				storm := exec.Command("/bin/sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done", n))
				if err := storm.Run(); err != nil {
					b.Fatal(err)
				}
				// Drain: the monitor idle and the exporter's queue empty,
				// for at most 5 s (the host's other processes keep
				// coming on a shared machine).
				for last, end := uint64(0), time.Now().Add(5*time.Second); time.Now().Before(end); {
					time.Sleep(300 * time.Millisecond)
					cur := m.Stats().Events
					if cur == last && (e == nil || e.Stats().InFlight == 0) {
						break
					}
					last = cur
				}
				cpu, events = cpuTime()-c0, m.Stats().Events-ev0
				if e != nil {
					st = e.Stats()
					st.Exported -= exp0.Exported
				}
			}
			perEvent := float64(cpu.Nanoseconds()) / 1e3 / float64(events)
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/n, "cpu-µs/exec")
			b.ReportMetric(perEvent, "cpu-µs/event")
			b.ReportMetric(float64(events), "events")
			if e == nil {
				base = perEvent
				return
			}
			b.ReportMetric(float64(st.Exported), "exported")
			b.ReportMetric(float64(st.DroppedTotal()), "dropped")
			if base > 0 {
				b.ReportMetric(perEvent-base, "export-cpu-µs/event")
			}
		})
	}
}

// BenchmarkRecord is the cost of turning one exec event into a log record.
func BenchmarkRecord(b *testing.B) {
	p := process.ReadProcess(os.Getpid())
	if p == nil {
		b.Fatal("cannot read this process")
	}
	ev := &process.Event{Kind: process.EventExec, PID: p.ID, Process: p, Time: time.Now(), Method: procmon.MethodEbpf}
	for b.Loop() {
		_ = otlp.Record(ev)
	}
}
