package prom_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/proctrack/proctrack/checksum"
	"github.com/proctrack/proctrack/metrics/prom"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/sockets"
)

// Scrape gets url and parses it, failing the test on any lint problem.
func Scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %s", url, err, resp.Status)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// Value is the value of the series of name whose labels include labels
// (name=value pairs); -1 when there is none.
func Value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestScrapeUnderStorm: a real scrape of a monitor's metrics passes the
// linter, and the counters move under a storm of execs.
func TestScrapeUnderStorm(t *testing.T) {
	m, err := procmon.New(procmon.Config{EventBuffer: 1 << 14})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Skipf("no method starts here: %v", err)
	}
	defer m.Close()
	if m.Method() == procmon.MethodProc {
		t.Skipf("only the proc method runs here, which misses short-lived processes")
	}
	r := sockets.New(sockets.Config{Cache: m.Cache()})
	h := checksum.New(checksum.Config{})
	c := prom.New(prom.Config{Monitor: m, Resolver: r, Hasher: h,
		Export: func() prom.ExportStats { return prom.ExportStats{Dropped: map[string]uint64{"queue_full": 0}} }})
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("CollectAndLint: %s: %s", p.Metric, p.Text)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	go func() {
		for ev := range m.Events() {
			c.Observe(&ev)
		}
	}()

	before := Scrape(t, srv.URL)
	if v := Value(before, "proctrack_monitor_running_method", "method", m.Method()); v != 1 {
		t.Errorf("proctrack_monitor_running_method{method=%q} = %v", m.Method(), v)
	}
	if v := Value(before, "proctrack_monitor_method_state", "method", m.Method(), "state", "running"); v != 1 {
		t.Errorf("method_state of %s running = %v", m.Method(), v)
	}
	const n = 300
	storm := exec.Command("/bin/sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done", n))
	if err := storm.Run(); err != nil {
		t.Fatal(err)
	}
	// A socket lookup, timed by its source.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := netip.MustParseAddrPort(conn.LocalAddr().String())
	remote := netip.MustParseAddrPort(conn.RemoteAddr().String())
	_, info, err := c.Lookup(sockets.TCP, local, remote)
	if err != nil {
		t.Errorf("Lookup of our own connection: %v", err)
	}

	var after map[string]*dto.MetricFamily
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = Scrape(t, srv.URL)
		if Value(after, "proctrack_events_total", "kind", "exec")-max(Value(before, "proctrack_events_total", "kind", "exec"), 0) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range []string{"proctrack_monitor_events_received_total", "proctrack_monitor_events_delivered_total", "proctrack_cache_added_total", "proctrack_cache_exits_total"} {
		if d := Value(after, name) - Value(before, name); d < n {
			t.Errorf("%s rose by %v under a storm of %d execs", name, d, n)
		}
	}
	if d := Value(after, "proctrack_events_total", "kind", "exec", "method", m.Method()) - max(Value(before, "proctrack_events_total", "kind", "exec"), 0); d < n {
		t.Errorf("proctrack_events_total{kind=exec} rose by %v, want >= %d", d, n)
	}
	if v := Value(after, "proctrack_socket_lookup_duration_seconds", "source", info.Source); v != 1 {
		t.Errorf("lookups answered by %q: %v, want 1", info.Source, v)
	}
	if v := Value(after, "proctrack_export_dropped_total", "reason", "queue_full"); v != 0 {
		t.Errorf("proctrack_export_dropped_total{reason=queue_full} = %v", v)
	}
	t.Logf("%s: received %v -> %v, dropped %v", m.Method(), Value(before, "proctrack_monitor_events_received_total"),
		Value(after, "proctrack_monitor_events_received_total"), Value(after, "proctrack_monitor_events_dropped_total"))
}
