// Command agent is the main job of a fleet: one per host, it monitors
// processes with the best method the host allows, resolves sockets to
// processes, exports every event to an OpenTelemetry collector over OTLP and
// serves its health to Prometheus.
//
//	agent --otlp collector:4317                          # events over OTLP/gRPC
//	agent --otlp collector:4318 --otlp-protocol http     # OTLP/HTTP
//	agent --metrics :9464                                # /metrics (the default)
//	agent --config agent.yaml                            # the rest (see agent.yaml)
//
// Flags override the file. SIGTERM or SIGINT stops it cleanly: the monitor
// stops, the exporter flushes what it holds (for at most
// otlp.shutdown_timeout), the metrics server closes, and it exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"gopkg.in/yaml.v3"

	"github.com/proctrack/proctrack/checksum"
	"github.com/proctrack/proctrack/examples/internal/cli"
	"github.com/proctrack/proctrack/export/otlp"
	"github.com/proctrack/proctrack/metrics/prom"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/sockets"
	sockebpf "github.com/proctrack/proctrack/sockets/ebpf"
)

// Config is the agent's YAML file.
type Config struct {
	// Method is the preferred monitoring method ("" the best).
	Method string `yaml:"method"`
	// Monitor is the path of procmon's configuration file (privilege
	// hooks, rules, sandbox; see the README); its method is overridden by
	// Method when that is set.
	Monitor string `yaml:"monitor"`
	// EventBuffer is the monitor's event buffer (procmon.Config.EventBuffer).
	EventBuffer int        `yaml:"event_buffer"`
	OTLP        OTLPConfig `yaml:"otlp"`
	Metrics     struct {
		// Listen is the address /metrics is served on ("" for none).
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`
	Sockets struct {
		// EBPF loads the in-kernel socket owner map where BPF is allowed
		// (sockets/ebpf); false resolves through /proc only.
		EBPF *bool `yaml:"ebpf"`
	} `yaml:"sockets"`
}

// OTLPConfig is the exporter's part of the file (export/otlp.Config).
type OTLPConfig struct {
	Endpoint        string            `yaml:"endpoint"`
	Protocol        string            `yaml:"protocol"`
	Insecure        bool              `yaml:"insecure"`
	Headers         map[string]string `yaml:"headers"`
	QueueSize       int               `yaml:"queue_size"`
	BatchSize       int               `yaml:"batch_size"`
	ExportInterval  time.Duration     `yaml:"export_interval"`
	ExportTimeout   time.Duration     `yaml:"export_timeout"`
	ShutdownTimeout time.Duration     `yaml:"shutdown_timeout"`
	ServiceName     string            `yaml:"service_name"`
}

// DefaultMetrics is where /metrics is served unless configured.
const DefaultMetrics = ":9464"

func main() {
	file := flag.String("config", "", "the agent's YAML configuration file")
	endpoint := flag.String("otlp", "", "the OTLP collector's host:port (default: the file's otlp.endpoint; none: no export)")
	protocol := flag.String("otlp-protocol", "", "grpc or http (default: the file's, else grpc)")
	insecure := flag.Bool("otlp-insecure", false, "send OTLP in plain text, without TLS")
	metrics := flag.String("metrics", "", "serve /metrics on this address (default: the file's metrics.listen, else "+DefaultMetrics+")")
	method := flag.String("method", "", "preferred method: ebpf, netlink, audit or proc (default: the best available)")
	cli.Parse()
	cfg := Config{}
	cfg.Metrics.Listen = DefaultMetrics
	if *file != "" {
		var err error
		if cfg, err = loadConfig(*file); err != nil {
			fmt.Fprintln(os.Stderr, "agent:", err)
			os.Exit(2)
		}
	}
	cfg.Method = or(*method, cfg.Method)
	cfg.OTLP.Endpoint = or(*endpoint, cfg.OTLP.Endpoint)
	cfg.OTLP.Protocol = or(*protocol, cfg.OTLP.Protocol)
	cfg.OTLP.Insecure = cfg.OTLP.Insecure || *insecure
	cfg.Metrics.Listen = or(*metrics, cfg.Metrics.Listen)
	// The OpenTelemetry SDK reports failed exports to its global handler
	// (stderr by default): into the program's log instead.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { slog.Warn("otlp: export failed", "err", err) }))
	ctx, stop := cli.Context(0)
	defer stop()
	a, err := start(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
	a.run(ctx)
	if err := a.close(); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

// loadConfig reads the agent's file; unknown keys are errors.
func loadConfig(path string) (Config, error) {
	cfg := Config{}
	cfg.Metrics.Listen = DefaultMetrics
	f, err := os.Open(path)
	if err != nil {
		return cfg, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// agent is the running job.
type agent struct {
	status    io.Writer
	mon       *procmon.Monitor
	resolver  *sockets.Resolver
	sockMap   *sockebpf.Map
	exporter  *otlp.Exporter
	collector *prom.Collector
	server    *http.Server
	// metricsAddr is the address /metrics is served on ("" for none).
	metricsAddr string
	served      chan error
}

// start starts the monitor, the resolver, the exporter and the metrics
// server. On error, whatever was started is closed.
func start(ctx context.Context, cfg Config, status io.Writer) (a *agent, err error) {
	a = &agent{status: status}
	defer func() {
		if err != nil {
			_ = a.close()
			a = nil
		}
	}()
	mcfg := procmon.Config{}
	if cfg.Monitor != "" {
		if mcfg, err = procmon.LoadConfig(cfg.Monitor); err != nil {
			return a, err
		}
	}
	mcfg.Method = or(cfg.Method, mcfg.Method)
	mcfg.EventBuffer = cfg.EventBuffer
	hasher := checksum.New(checksum.Config{})
	mcfg.CacheConfig.Hasher = hasher
	if a.mon, err = procmon.New(mcfg); err != nil {
		return a, err
	}
	if err = a.mon.Start(ctx); err != nil {
		return a, err
	}
	for _, s := range a.mon.Status().Methods {
		if s.State == "skipped" {
			fmt.Fprintf(status, "method %s skipped: %s\n", s.Method, s.Reason)
		}
	}
	fmt.Fprintf(status, "monitoring with %s\n", a.mon.Method())

	scfg := sockets.Config{Cache: a.mon.Cache()}
	if cfg.Sockets.EBPF == nil || *cfg.Sockets.EBPF {
		if m, merr := sockebpf.Open(); merr != nil {
			fmt.Fprintf(status, "sockets: no in-kernel socket map, resolving through /proc: %v\n", merr)
		} else {
			a.sockMap, scfg.SocketMap = m, m
		}
	}
	a.resolver = sockets.New(scfg)
	if err = a.resolver.Start(ctx); err != nil {
		return a, err
	}

	pcfg := prom.Config{Monitor: a.mon, Resolver: a.resolver, Hasher: hasher}
	if o := cfg.OTLP; o.Endpoint != "" {
		a.exporter, err = otlp.New(ctx, otlp.Config{Endpoint: o.Endpoint, Protocol: o.Protocol, Insecure: o.Insecure, Headers: o.Headers,
			QueueSize: o.QueueSize, BatchSize: o.BatchSize, ExportInterval: o.ExportInterval, ExportTimeout: o.ExportTimeout,
			ShutdownTimeout: o.ShutdownTimeout, ServiceName: o.ServiceName})
		if err != nil {
			return a, err
		}
		pcfg.Export = func() prom.ExportStats { return prom.ExportStats(a.exporter.Stats()) }
		fmt.Fprintf(status, "exporting events to %s over %s\n", o.Endpoint, or(o.Protocol, otlp.GRPC))
	}
	a.collector = prom.New(pcfg)

	if cfg.Metrics.Listen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(a.collector, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		ln, lerr := net.Listen("tcp", cfg.Metrics.Listen)
		if lerr != nil {
			return a, fmt.Errorf("metrics: %w", lerr)
		}
		a.metricsAddr = ln.Addr().String()
		a.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		a.served = make(chan error, 1)
		go func() { a.served <- a.server.Serve(ln) }()
		fmt.Fprintf(status, "metrics on http://%s/metrics\n", a.metricsAddr)
	}
	return a, nil
}

// run exports and counts every event until ctx is done. It never makes the
// monitor wait: Export drops what the collector cannot take.
func (a *agent) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-a.mon.Events():
			if !ok {
				return
			}
			a.collector.Observe(&ev)
			if a.exporter != nil {
				a.exporter.Export(&ev)
			}
		}
	}
}

// close stops everything start started, flushing the exporter, and reports
// the monitor's and the exporter's figures.
func (a *agent) close() error {
	var errs []error
	if a.mon != nil {
		errs = append(errs, a.mon.Close())
		st := a.mon.Stats()
		fmt.Fprintf(a.status, "%d events, %d dropped, %d lost\n", st.Events, st.Dropped, st.Lost)
	}
	if a.exporter != nil {
		// A collector that is down is no failure of the agent's: what it
		// could not take is counted, and said.
		if err := a.exporter.Close(); err != nil {
			fmt.Fprintf(a.status, "warning: %v\n", err)
		}
		st := a.exporter.Stats()
		fmt.Fprintf(a.status, "exported %d records, dropped %v\n", st.Exported, st.Dropped)
	}
	if a.resolver != nil {
		errs = append(errs, a.resolver.Close())
	}
	if a.sockMap != nil {
		errs = append(errs, a.sockMap.Close())
	}
	if a.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs = append(errs, a.server.Shutdown(ctx))
		if err := <-a.served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
