package otlp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/proctrack/proctrack/export/otlp"
	"github.com/proctrack/proctrack/internal/otlptest"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
)

// startMonitor starts a monitor with the best method that reports the
// path and arguments of a short-lived process, or skips.
func startMonitor(t *testing.T) *procmon.Monitor {
	t.Helper()
	m, err := procmon.New(procmon.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Skipf("no method starts here: %v", err)
	}
	if m.Method() == procmon.MethodProc {
		m.Close()
		t.Skipf("only the proc method runs here, which misses short-lived processes: %+v", m.Status().Methods)
	}
	return m
}

// TestExportExec: a real exec of /bin/true reaches an OTLP endpoint, over
// gRPC and over HTTP, with its path, arguments, pid, parent and user as
// semantic-convention attributes and the host as the resource.
func TestExportExec(t *testing.T) {
	m := startMonitor(t)
	defer m.Close()
	ep := otlptest.Start(t)
	truePath, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, proto := range []string{otlp.GRPC, otlp.HTTP} {
		t.Run(proto, func(t *testing.T) {
			addr := ep.GRPCAddr
			if proto == otlp.HTTP {
				addr = ep.HTTPAddr
			}
			e, err := otlp.New(context.Background(), otlp.Config{Endpoint: addr, Protocol: proto, Insecure: true, ExportInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			// The host's other processes are not exported: on a busy
			// machine they would only queue up in front of ours.
			mine := make(chan process.Event, 16)
			go func() {
				defer close(done)
				for {
					select {
					case <-ctx.Done():
						return
					case ev := <-m.Events():
						if ev.Kind == process.EventExec && ev.Process != nil && ev.Process.Serialize().PPID == os.Getpid() {
							mine <- ev
						}
					}
				}
			}()
			go e.Run(ctx, mine) // mine is never full: only this test's execs
			tag := fmt.Sprintf("otlp-%s-%d", proto, time.Now().UnixNano())
			cmd := exec.Command("/bin/true", tag)
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			rec, err := ep.Wait(10*time.Second, func(r otlptest.Record) bool {
				return r.EventName == "proctrack.process.exec" && slices.Contains(r.Strings(string(semconv.ProcessCommandArgsKey)), tag)
			})
			cancel()
			<-done
			if cerr := e.Close(); cerr != nil {
				t.Errorf("Close: %v", cerr)
			}
			if err != nil {
				t.Fatalf("%v; exporter %+v", err, e.Stats())
			}
			if got := rec.Str(string(semconv.ProcessExecutablePathKey)); got != truePath {
				t.Errorf("process.executable.path = %q, want %q", got, truePath)
			}
			if got := rec.Strings(string(semconv.ProcessCommandArgsKey)); !slices.Equal(got, []string{"/bin/true", tag}) {
				t.Errorf("process.command_args = %q", got)
			}
			if pid, ok := rec.Int(string(semconv.ProcessPIDKey)); !ok || int(pid) != cmd.Process.Pid {
				t.Errorf("process.pid = %d (%v), want %d", pid, ok, cmd.Process.Pid)
			}
			if ppid, ok := rec.Int(string(semconv.ProcessParentPIDKey)); !ok || int(ppid) != os.Getpid() {
				t.Errorf("process.parent_pid = %d (%v), want %d", ppid, ok, os.Getpid())
			}
			if uid, ok := rec.Int(string(semconv.ProcessUserIDKey)); !ok || int(uid) != os.Geteuid() {
				t.Errorf("process.user.id = %d (%v), want %d", uid, ok, os.Geteuid())
			}
			if uid, ok := rec.Int(string(semconv.ProcessRealUserIDKey)); !ok || int(uid) != os.Getuid() {
				t.Errorf("process.real_user.id = %d (%v), want %d", uid, ok, os.Getuid())
			}
			if got := rec.Str(otlp.KeyMethod); got != m.Method() {
				t.Errorf("%s = %q, want %q", otlp.KeyMethod, got, m.Method())
			}
			if got := rec.Str(otlp.KeyProcessKey); got == "" {
				t.Errorf("%s missing", otlp.KeyProcessKey)
			}
			if got := rec.Resource[string(semconv.HostNameKey)].GetStringValue(); got != host {
				t.Errorf("resource host.name = %q, want %q", got, host)
			}
			if st := e.Stats(); st.Exported == 0 {
				t.Errorf("Stats: %+v, nothing exported", st)
			}
		})
	}
}

// TestExportCollectorDown: with the endpoint stopped, Export does not block,
// events beyond the queue are dropped and counted, so are the batches the
// exporter gave up on, and Close counts what it could not send.
func TestExportCollectorDown(t *testing.T) {
	ep := otlptest.Start(t)
	ep.Stop()
	const queue = 32
	e, err := otlp.New(context.Background(), otlp.Config{Endpoint: ep.GRPCAddr, Insecure: true, QueueSize: queue, BatchSize: 8,
		ExportInterval: 10 * time.Millisecond, ExportTimeout: 100 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := process.NewProcessWithParent(os.Getpid(), os.Getppid(), "test")
	const n = 1000
	for range n {
		e.Export(&process.Event{Kind: process.EventExec, PID: p.ID, Process: p, Time: time.Now()})
	}
	st := e.Stats()
	if st.Dropped[otlp.DropQueueFull] < n-queue {
		t.Errorf("after %d events with a queue of %d and the collector down: %+v", n, queue, st)
	}
	for deadline := time.Now().Add(10 * time.Second); e.Stats().Dropped[otlp.DropExportFailed] == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no export failed with the collector down: %+v", e.Stats())
		}
	}
	if err := e.Close(); err == nil {
		t.Logf("Close returned no error with the collector down")
	}
	st = e.Stats()
	if st.Exported != 0 || st.InFlight != 0 || st.DroppedTotal() != n {
		t.Errorf("after Close: %+v, want all %d dropped", st, n)
	}
	e.Export(&process.Event{Kind: process.EventExit, PID: 1})
	if got := e.Stats().Dropped[otlp.DropShutdown]; got == 0 {
		t.Errorf("Export after Close was not counted as dropped")
	}
}

// TestRecord: the attributes of events that carry more than an exec.
func TestRecord(t *testing.T) {
	p := process.NewProcessWithParent(42, 7, "sh")
	p.Path, p.Args, p.ContainerID, p.ContainerRuntime = "/usr/bin/sh", []string{"sh", "-c", "x"}, "abc123", "docker"
	p.Creds.EUID, p.Creds.UID = 0, 1000
	p.Creds.CapEffective = 1 << 21 // CAP_SYS_ADMIN
	ev := &process.Event{Kind: process.EventUID, PID: 42, Process: p, Matched: []string{"UidTestRule"}, MatchedInKernel: true,
		Verdict: process.VerdictDenied, Creds: &process.CredChange{Old: process.Credentials{UID: 1000, EUID: 1000}}}
	r := otlp.Record(ev)
	got := map[string]attribute.Value{}
	r.WalkAttributes(func(kv attribute.KeyValue) bool { got[string(kv.Key)] = kv.Value; return true })
	want := map[string]string{
		"process.pid": "42", "process.parent_pid": "7", "process.executable.path": "/usr/bin/sh", "process.executable.name": "sh",
		"process.command_args": `["sh","-c","x"]`, "process.user.id": "0", "process.real_user.id": "1000",
		"container.id": "abc123", "container.runtime.name": "docker",
		otlp.KeyCapsEffective: `["CAP_SYS_ADMIN"]`, otlp.KeyRules: `["UidTestRule"]`, otlp.KeyRulesInKernel: "true",
		otlp.KeyVerdict: "denied", otlp.KeyOldEUID: "1000", otlp.KeyKind: "uid",
	}
	for k, w := range want {
		if v, ok := got[k]; !ok || v.String() != w {
			t.Errorf("%s = %q (present %v), want %q", k, v.String(), ok, w)
		}
	}
	if r.EventName() != "proctrack.process.uid" || r.Severity().String() != "WARN" {
		t.Errorf("event name %q, severity %v", r.EventName(), r.Severity())
	}
}

// TestNewErrors: a bad configuration is a clear error matching ErrConfig.
func TestNewErrors(t *testing.T) {
	for _, cfg := range []otlp.Config{{}, {Endpoint: "h:1", Protocol: "udp"}, {Endpoint: "h:1", QueueSize: -1}} {
		if _, err := otlp.New(context.Background(), cfg); !errors.Is(err, otlp.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

// TestExportDuringClose: events exported while Close runs are each either
// sent or counted as dropped, never lost uncounted.
func TestExportDuringClose(t *testing.T) {
	ep := otlptest.Start(t)
	ep.Stop()
	p := process.NewProcessWithParent(os.Getpid(), os.Getppid(), "test")
	for range 10 {
		e, err := otlp.New(context.Background(), otlp.Config{Endpoint: ep.GRPCAddr, Insecure: true, QueueSize: 1 << 16,
			ExportInterval: time.Hour, ShutdownTimeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var sent atomic.Uint64
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					e.Export(&process.Event{Kind: process.EventExec, PID: p.ID, Process: p})
					sent.Add(1)
				}
			})
		}
		time.Sleep(5 * time.Millisecond)
		_ = e.Close()
		close(stop)
		wg.Wait()
		if st := e.Stats(); st.Exported+st.DroppedTotal() != sent.Load() || st.InFlight != 0 {
			t.Fatalf("%d exported: %+v", sent.Load(), st)
		}
	}
}
