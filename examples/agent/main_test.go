package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/proctrack/proctrack/internal/otlptest"
	"github.com/proctrack/proctrack/internal/proctest"
)

// buildAgent builds the agent binary.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agent")
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// scrape gets /metrics, fails the test on a lint problem, and returns the
// value of each unlabelled series and of each labelled one as
// name{l="v",...}.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "proctrack_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := name
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				key += "{" + strings.Join(ls, ",") + "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return float64(m.GetHistogram().GetSampleCount())
}

// runAgent starts the agent binary with args and returns it with the
// address of its /metrics, once it serves, and its standard error.
func runAgent(t *testing.T, bin string, args ...string) (*exec.Cmd, string, *proctest.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--metrics", "127.0.0.1:0"}, args...)...)
	stderr := &proctest.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	const prefix = "metrics on http://"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out := stderr.String()
		if i := strings.Index(out, prefix); i >= 0 {
			if j := strings.Index(out[i:], "/metrics\n"); j >= 0 {
				return cmd, out[i+len(prefix) : i+j], stderr
			}
		}
	}
	t.Fatalf("the agent did not serve /metrics: %s", stderr)
	return nil, "", nil
}

// needsExecMethod skips unless a method that reports short-lived
// processes runs here (the agent picks the best).
func needsExecMethod(t *testing.T) {
	t.Helper()
	proctest.RequireRoot(t, "the agent's monitor needs a method that sees every exec (ebpf, netlink or audit)")
}

// TestAgentDeliversExec: the agent, run against an in-test OTLP endpoint,
// delivers an exec of /bin/true with its path, arguments, pid, parent and
// user as semantic-convention attributes, over gRPC and over HTTP; SIGTERM
// flushes the exporter and ends it with status 0.
func TestAgentDeliversExec(t *testing.T) {
	needsExecMethod(t)
	bin := buildAgent(t)
	ep := otlptest.Start(t)
	truePath, _ := filepath.EvalSymlinks("/bin/true")
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			addr := ep.GRPCAddr
			if proto == "http" {
				addr = ep.HTTPAddr
			}
			// A long export interval: only the flush at SIGTERM sends. It
			// may have to send every event of a busy host: a long timeout.
			cfg := filepath.Join(t.TempDir(), "agent.yaml")
			if err := os.WriteFile(cfg, []byte("event_buffer: 65536\notlp: {queue_size: 65536, export_interval: 1m, shutdown_timeout: 1m}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd, _, stderr := runAgent(t, bin, "--config", cfg, "--otlp", addr, "--otlp-protocol", proto, "--otlp-insecure")
			tag := fmt.Sprintf("agent-%s-%d", proto, time.Now().UnixNano())
			sh := exec.Command("/bin/sh", "-c", "/bin/true "+tag+"; echo $$")
			out, err := sh.Output()
			if err != nil {
				t.Fatal(err)
			}
			shPID, _ := strconv.Atoi(strings.TrimSpace(string(out)))
			time.Sleep(2 * time.Second) // the monitor reads the exec (a loaded host may be slow)
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("agent exit after SIGTERM: %v\n%s", err, stderr)
			}
			rec, err := ep.Wait(5*time.Second, func(r otlptest.Record) bool {
				return r.EventName == "proctrack.process.exec" && slices.Contains(r.Strings(string(semconv.ProcessCommandArgsKey)), tag)
			})
			if err != nil {
				t.Fatalf("%v\nagent: %s", err, stderr)
			}
			if got := rec.Str(string(semconv.ProcessExecutablePathKey)); got != truePath {
				t.Errorf("process.executable.path = %q, want %q", got, truePath)
			}
			if got := rec.Strings(string(semconv.ProcessCommandArgsKey)); !slices.Equal(got, []string{"/bin/true", tag}) {
				t.Errorf("process.command_args = %q", got)
			}
			pid, ok := rec.Int(string(semconv.ProcessPIDKey))
			if !ok || pid <= 0 {
				t.Errorf("process.pid = %d (%v)", pid, ok)
			}
			if ppid, ok := rec.Int(string(semconv.ProcessParentPIDKey)); !ok || int(ppid) != shPID {
				t.Errorf("process.parent_pid = %d (%v), want the shell's %d", ppid, ok, shPID)
			}
			if uid, ok := rec.Int(string(semconv.ProcessUserIDKey)); !ok || int(uid) != os.Geteuid() {
				t.Errorf("process.user.id = %d (%v), want %d", uid, ok, os.Geteuid())
			}
		})
	}
}

// TestAgentCollectorDown: with the endpoint stopped, a storm still reaches
// the monitor whole, /metrics shows its counters moving and the export's
// drop counter rising, and SIGTERM still ends the agent.
func TestAgentCollectorDown(t *testing.T) {
	needsExecMethod(t)
	bin := buildAgent(t)
	ep := otlptest.Start(t)
	ep.Stop()
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfg, []byte("event_buffer: 65536\notlp: {queue_size: 64, shutdown_timeout: 200ms}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, maddr, stderr := runAgent(t, bin, "--config", cfg, "--otlp", ep.GRPCAddr, "--otlp-insecure")
	before := scrape(t, maddr)
	const n = 500
	storm := exec.Command("/bin/sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done", n))
	if err := storm.Run(); err != nil {
		t.Fatal(err)
	}
	var after map[string]float64
	for deadline := time.Now().Add(15 * time.Second); ; {
		after = scrape(t, maddr)
		if sum(after, "proctrack_events_total{kind=\"exec\"")-sum(before, "proctrack_events_total{kind=\"exec\"") >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := sum(after, "proctrack_events_total{kind=\"exec\"") - sum(before, "proctrack_events_total{kind=\"exec\""); d < n {
		t.Errorf("exec events rose by %v under a storm of %d with the collector down", d, n)
	}
	if d := after["proctrack_monitor_events_received_total"] - before["proctrack_monitor_events_received_total"]; d < 2*n {
		t.Errorf("monitor_events_received_total rose by %v, want >= %d (fork and exec of each)", d, 2*n)
	}
	if d := after["proctrack_monitor_events_dropped_total"] - before["proctrack_monitor_events_dropped_total"]; d != 0 {
		t.Errorf("the monitor dropped %v events: the exporter made its consumer wait", d)
	}
	if d := after[`proctrack_export_dropped_total{reason="queue_full"}`] - before[`proctrack_export_dropped_total{reason="queue_full"}`]; d < n {
		t.Errorf("export_dropped_total{queue_full} rose by %v, want >= %d", d, n)
	}
	if after["proctrack_export_records_total"] != 0 {
		t.Errorf("records exported to a stopped endpoint: %v", after["proctrack_export_records_total"])
	}
	t.Logf("received %v, export dropped %v", after["proctrack_monitor_events_received_total"], after[`proctrack_export_dropped_total{reason="queue_full"}`])
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", err, stderr)
	}
}

// sum adds the series whose key starts with prefix.
func sum(m map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// TestConfigErrors: an unknown key or a bad value is an error naming the file.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, body := range []string{"otlp: {endpoitn: x}\n", "otlp: {export_interval: soon}\n"} {
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("loadConfig(%q) = %v, want an error naming the file", body, err)
		}
	}
	cfg, err := loadConfig("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OTLP.Endpoint == "" || cfg.Metrics.Listen != DefaultMetrics || cfg.OTLP.ExportInterval != time.Second {
		t.Errorf("agent.yaml read as %+v", cfg)
	}
}
