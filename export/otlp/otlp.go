package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/proctrack/proctrack/procmon/process"
)

// Protocols of Config.Protocol.
const (
	GRPC = "grpc"
	HTTP = "http"
)

// Defaults of Config.
const (
	DefaultQueueSize       = 4096
	DefaultBatchSize       = 512
	DefaultExportInterval  = time.Second
	DefaultExportTimeout   = 10 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
	DefaultServiceName     = "proctrack"
)

// Drop reasons, the keys of Stats.Dropped.
const (
	// DropQueueFull: the event found Config.QueueSize records in flight.
	DropQueueFull = "queue_full"
	// DropExportFailed: the collector refused the batch, or could not be
	// reached, after the exporter's retries.
	DropExportFailed = "export_failed"
	// DropShutdown: the record was still queued when Close gave up
	// flushing (Config.ShutdownTimeout), or Export was called after Close.
	DropShutdown = "shutdown"
)

// ErrConfig is matched by the errors of New for a bad Config.
var ErrConfig = errors.New("otlp: invalid configuration")

// Config configures an Exporter. Only Endpoint is required.
type Config struct {
	// Endpoint is the collector's host:port (4317 for gRPC, 4318 for
	// HTTP by convention).
	Endpoint string
	// Protocol is GRPC (the default) or HTTP (protobuf over HTTP, to
	// /v1/logs).
	Protocol string
	// Insecure sends in plain text instead of TLS.
	Insecure bool
	// Headers are sent with every request (authentication tokens).
	Headers map[string]string
	// QueueSize bounds the records in flight (queued in the SDK or being
	// sent); an event beyond it is dropped (DropQueueFull). 0 means
	// DefaultQueueSize.
	QueueSize int
	// BatchSize is the most records in one request; 0 means
	// DefaultBatchSize.
	BatchSize int
	// ExportInterval is the longest a record waits for its batch to fill;
	// 0 means DefaultExportInterval.
	ExportInterval time.Duration
	// ExportTimeout bounds one export, retries included; 0 means
	// DefaultExportTimeout.
	ExportTimeout time.Duration
	// ShutdownTimeout bounds the flush of Close; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// ServiceName is the resource's service.name; "" means
	// DefaultServiceName.
	ServiceName string
	// Logger receives the exporter's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Stats are an Exporter's counters.
type Stats struct {
	Exported uint64            `json:"exported"`  // records the collector accepted
	InFlight uint64            `json:"in_flight"` // records queued or being sent
	Dropped  map[string]uint64 `json:"dropped"`   // records lost, by reason (Drop*)
}

// Exporter sends events to an OTLP collector as log records. Create it with
// New, feed it with Export or Run, and Close it to flush.
type Exporter struct {
	cfg      Config
	provider *sdklog.LoggerProvider
	logger   log.Logger
	log      *slog.Logger

	inFlight  atomic.Int64
	exported  atomic.Uint64
	queueFull atomic.Uint64
	failed    atomic.Uint64
	shutdown  atomic.Uint64

	// mu orders Export against Close: Export holds it shared while it
	// checks closed and emits, so that a record is either in flight when
	// Close counts what is left, or counted as dropped.
	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once
	closeErr  error
	// acct orders the counting of exports against Close's final count:
	// once final is set, records are already counted (DropShutdown), and
	// an export the SDK still finishes after Close gave up is not counted
	// again.
	acct  sync.Mutex
	final bool
}

// New returns an Exporter sending to cfg.Endpoint. It connects lazily: a
// collector that is not there yet is not an error (records are then
// retried, and dropped when the queue is full).
func New(ctx context.Context, cfg Config) (*Exporter, error) {
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("%w: no endpoint", ErrConfig)
	}
	if cfg.QueueSize < 0 || cfg.BatchSize < 0 || cfg.ExportInterval < 0 || cfg.ExportTimeout < 0 || cfg.ShutdownTimeout < 0 {
		return nil, fmt.Errorf("%w: negative size or duration", ErrConfig)
	}
	cfg.QueueSize = or(cfg.QueueSize, DefaultQueueSize)
	cfg.BatchSize = min(or(cfg.BatchSize, DefaultBatchSize), cfg.QueueSize)
	cfg.ExportInterval = or(cfg.ExportInterval, DefaultExportInterval)
	cfg.ExportTimeout = or(cfg.ExportTimeout, DefaultExportTimeout)
	cfg.ShutdownTimeout = or(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	cfg.ServiceName = or(cfg.ServiceName, DefaultServiceName)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithHost(), resource.WithHostID(), resource.WithOS(), resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(cfg.ServiceName)))
	if err != nil && res == nil {
		// A partial resource (no machine id) is still the host's.
		return nil, fmt.Errorf("otlp: host resource: %w", err)
	}
	e := &Exporter{cfg: cfg, log: cfg.Logger}
	batch := sdklog.NewBatchProcessor(&counting{next: exp, e: e},
		sdklog.WithMaxQueueSize(cfg.QueueSize), sdklog.WithExportMaxBatchSize(cfg.BatchSize),
		sdklog.WithExportInterval(cfg.ExportInterval), sdklog.WithExportTimeout(cfg.ExportTimeout))
	e.provider = sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(batch))
	e.logger = e.provider.Logger("github.com/proctrack/proctrack/export/otlp")
	return e, nil
}

// newExporter returns the SDK's OTLP exporter for cfg's protocol.
func newExporter(ctx context.Context, cfg Config) (sdklog.Exporter, error) {
	switch cfg.Protocol {
	case GRPC, "":
		opts := []otlploggrpc.Option{otlploggrpc.WithEndpoint(cfg.Endpoint), otlploggrpc.WithTimeout(cfg.ExportTimeout)}
		if cfg.Insecure {
			opts = append(opts, otlploggrpc.WithInsecure())
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlploggrpc.WithHeaders(cfg.Headers))
		}
		exp, err := otlploggrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp: grpc exporter for %s: %w", cfg.Endpoint, err)
		}
		return exp, nil
	case HTTP:
		opts := []otlploghttp.Option{otlploghttp.WithEndpoint(cfg.Endpoint), otlploghttp.WithTimeout(cfg.ExportTimeout)}
		if cfg.Insecure {
			opts = append(opts, otlploghttp.WithInsecure())
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlploghttp.WithHeaders(cfg.Headers))
		}
		exp, err := otlploghttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp: http exporter for %s: %w", cfg.Endpoint, err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("%w: protocol %q is not %q or %q", ErrConfig, cfg.Protocol, GRPC, HTTP)
}

// Export queues one event for the collector. It never blocks: when
// Config.QueueSize records are in flight the event is dropped and counted.
func (e *Exporter) Export(ev *process.Event) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		e.shutdown.Add(1)
		return
	}
	if e.inFlight.Add(1) > int64(e.cfg.QueueSize) {
		e.inFlight.Add(-1)
		e.queueFull.Add(1)
		return
	}
	// The SDK's queue holds at most what is in flight, so it never drops.
	e.logger.Emit(context.Background(), Record(ev))
}

// Run exports every event of events until the channel is closed or ctx is
// done. It is the loop a program puts on a monitor's Events().
func (e *Exporter) Run(ctx context.Context, events <-chan process.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			e.Export(&ev)
		}
	}
}

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	return Stats{
		Exported: e.exported.Load(),
		InFlight: uint64(max(e.inFlight.Load(), 0)),
		Dropped: map[string]uint64{
			DropQueueFull:    e.queueFull.Load(),
			DropExportFailed: e.failed.Load(),
			DropShutdown:     e.shutdown.Load(),
		},
	}
}

// DroppedTotal returns the records lost for every reason.
func (s Stats) DroppedTotal() uint64 {
	var n uint64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Close flushes what is queued (for at most Config.ShutdownTimeout) and
// stops the exporter; records it could not send by then are counted as
// dropped (DropShutdown), even if the SDK's last retry still delivers
// them afterwards. Export after Close drops.
func (e *Exporter) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.ShutdownTimeout)
		defer cancel()
		if err := e.provider.Shutdown(ctx); err != nil {
			e.closeErr = fmt.Errorf("otlp: flushing to %s: %w", e.cfg.Endpoint, err)
		}
		e.acct.Lock()
		e.final = true
		n := e.inFlight.Swap(0)
		e.shutdown.Add(uint64(n))
		e.acct.Unlock()
		if n > 0 {
			e.log.Warn("otlp: records not sent at shutdown", "n", n, "endpoint", e.cfg.Endpoint)
		}
	})
	return e.closeErr
}

// counting is the exporter under the SDK's batch processor: it counts what
// the collector accepted and what it refused.
type counting struct {
	next sdklog.Exporter
	e    *Exporter
}

func (c *counting) Export(ctx context.Context, recs []sdklog.Record) error {
	err := c.next.Export(ctx, recs)
	n := uint64(len(recs))
	c.e.acct.Lock()
	defer c.e.acct.Unlock()
	if c.e.final {
		return err // counted by Close
	}
	if err != nil {
		c.e.failed.Add(n)
		c.e.log.Debug("otlp: export failed", "records", n, "err", err)
	} else {
		c.e.exported.Add(n)
	}
	c.e.inFlight.Add(-int64(n))
	return err
}

func (c *counting) Shutdown(ctx context.Context) error   { return c.next.Shutdown(ctx) }
func (c *counting) ForceFlush(ctx context.Context) error { return c.next.ForceFlush(ctx) }

// or returns v, or def when v is the zero value.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
