// Package prom exposes proctrack's health to Prometheus: a
// prometheus.Collector (github.com/prometheus/client_golang) over the
// counters of the monitor, the process cache, the socket resolver, the
// checksum service and an event exporter, read at every scrape.
//
// Every metric is named proctrack_<part>_...:
//
//	proctrack_monitor_*     procmon.Monitor.Stats and Status: events received, delivered and
//	                        dropped, losses by reason, reconciliations, the running method and
//	                        each method's state
//	proctrack_events_total  events the program consumed, by kind and method (Collector.Observe)
//	proctrack_cache_*       cache.EventsStore.Stats: size, additions, exits, evictions, ...
//	proctrack_socket_*      sockets.Resolver.Stats, and lookups by source with their latency
//	                        (Collector.Lookup)
//	proctrack_checksum_*    checksum.Hasher.Stats: files hashed, cache hits, bytes read
//	proctrack_export_*      an exporter's records sent, in flight and dropped by reason
//
// The counters of each part are tables (monitorMetrics, cacheMetrics, ...):
// a field added to a Stats type is one line there.
//
// This package imports client_golang; procmon does not import it.
package prom

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proctrack/proctrack/cache"
	"github.com/proctrack/proctrack/checksum"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/sockets"
)

// Namespace starts every metric name.
const Namespace = "proctrack"

// ExportStats are an event exporter's counters; export/otlp's Stats
// converts to it (prom.ExportStats(e.Stats())).
type ExportStats struct {
	Exported uint64            // records the collector accepted
	InFlight uint64            // records queued or being sent
	Dropped  map[string]uint64 // records lost, by reason
}

// Config says what a Collector reads. Every part is optional.
type Config struct {
	Monitor  *procmon.Monitor
	Cache    *cache.EventsStore // nil: the Monitor's cache
	Resolver *sockets.Resolver
	Hasher   *checksum.Hasher
	// Export returns an exporter's counters.
	Export func() ExportStats
	// LookupBuckets are the buckets of the socket lookup latency
	// histogram, in seconds; nil means DefaultLookupBuckets.
	LookupBuckets []float64
}

// DefaultLookupBuckets span a warm inode lookup (100 ns) to a cold /proc
// scan (100 ms and more).
var DefaultLookupBuckets = []float64{1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1}

// metric is one value read from a stats snapshot S.
type metric[S any] struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(S) float64
}

func counter[S any](name, help string, v func(S) uint64) metric[S] {
	return metric[S]{prometheus.NewDesc(Namespace+"_"+name, help, nil, nil), prometheus.CounterValue, func(s S) float64 { return float64(v(s)) }}
}

func gauge[S any](name, help string, v func(S) int) metric[S] {
	return metric[S]{prometheus.NewDesc(Namespace+"_"+name, help, nil, nil), prometheus.GaugeValue, func(s S) float64 { return float64(v(s)) }}
}

var monitorMetrics = []metric[procmon.Stats]{
	counter("monitor_events_received_total", "Events the monitor received from its method.", func(s procmon.Stats) uint64 { return s.Events }),
	counter("monitor_events_delivered_total", "Events the monitor put on its Events channel.", func(s procmon.Stats) uint64 { return s.Delivered }),
	counter("monitor_events_dropped_total", "Events dropped because the consumer did not take them in time.", func(s procmon.Stats) uint64 { return s.Dropped }),
	counter("monitor_reconciliations_total", "Scans of /proc run to repair the cache after a loss.", func(s procmon.Stats) uint64 { return s.Reconciliations }),
	counter("monitor_incomplete_events_total", "Exec events whose process was gone before /proc could be read.", func(s procmon.Stats) uint64 { return s.Incomplete }),
	counter("monitor_source_errors_total", "Malformed messages the method skipped.", func(s procmon.Stats) uint64 { return s.SourceErrors }),
}

var cacheMetrics = []metric[cache.Stats]{
	gauge("cache_processes", "Processes in the process cache.", func(s cache.Stats) int { return s.Entries }),
	gauge("cache_exited_processes", "Cached processes that exited, kept for their grace period.", func(s cache.Stats) int { return s.Exited }),
	counter("cache_added_total", "Processes added to the cache.", func(s cache.Stats) uint64 { return s.Added }),
	counter("cache_execs_total", "Execs applied to cached processes.", func(s cache.Stats) uint64 { return s.Execs }),
	counter("cache_exits_total", "Exits recorded in the cache.", func(s cache.Stats) uint64 { return s.Exits }),
	counter("cache_removed_total", "Exited processes removed after their grace period.", func(s cache.Stats) uint64 { return s.Removed }),
	counter("cache_evicted_total", "Processes evicted at the cache's size limit.", func(s cache.Stats) uint64 { return s.Evicted }),
	counter("cache_pid_reuses_total", "Lookups that found a cached pid taken by a new process.", func(s cache.Stats) uint64 { return s.PIDReuses }),
	counter("cache_ancestor_reads_total", "Ancestors read from /proc because the cache lacked them.", func(s cache.Stats) uint64 { return s.AncestorReads }),
	counter("cache_revalidations_total", "Reads of /proc made to confirm a cache entry.", func(s cache.Stats) uint64 { return s.Revalidations }),
	counter("cache_checksums_total", "Processes whose checksums were computed.", func(s cache.Stats) uint64 { return s.Checksums }),
	counter("cache_checksum_errors_total", "Checksum computations that failed.", func(s cache.Stats) uint64 { return s.ChecksumErrs }),
}

var socketMetrics = []metric[sockets.Stats]{
	gauge("socket_inodes", "Socket inodes in the resolver's cache.", func(s sockets.Stats) int { return s.Inodes }),
	gauge("socket_negative_inodes", "Inodes in the resolver's negative cache.", func(s sockets.Stats) int { return s.Negative }),
	counter("socket_inode_hits_total", "Inode lookups answered from the inode cache.", func(s sockets.Stats) uint64 { return s.Hits }),
	counter("socket_validations_total", "Readlinks made to confirm an inode cache hit.", func(s sockets.Stats) uint64 { return s.Validations }),
	counter("socket_stale_total", "Cached inodes found wrong (descriptor closed, pid reused).", func(s sockets.Stats) uint64 { return s.Stale }),
	counter("socket_partial_scans_total", "Scans of the descriptor tables of recent owners and pids.", func(s sockets.Stats) uint64 { return s.PartialScans }),
	counter("socket_full_scans_total", "Full scans of /proc/*/fd.", func(s sockets.Stats) uint64 { return s.FullScans }),
	counter("socket_negative_hits_total", "Inode lookups answered by the negative cache.", func(s sockets.Stats) uint64 { return s.NegativeHits }),
	counter("socket_misses_total", "Inode lookups that found no owner.", func(s sockets.Stats) uint64 { return s.Misses }),
}

var checksumMetrics = []metric[checksum.Stats]{
	counter("checksum_files_hashed_total", "Files read and hashed.", func(s checksum.Stats) uint64 { return s.Hashed }),
	counter("checksum_cache_hits_total", "Checksum requests answered from the hash cache.", func(s checksum.Stats) uint64 { return s.CacheHits }),
	counter("checksum_read_bytes_total", "Bytes read from files while hashing.", func(s checksum.Stats) uint64 { return s.BytesRead }),
	counter("checksum_too_large_total", "Checksum requests refused because the file was too large.", func(s checksum.Stats) uint64 { return s.TooLarge }),
	counter("checksum_errors_total", "Checksum requests that failed for another reason.", func(s checksum.Stats) uint64 { return s.Errors }),
}

var exportMetrics = []metric[ExportStats]{
	counter("export_records_total", "Event records the collector accepted.", func(s ExportStats) uint64 { return s.Exported }),
	gauge("export_records_in_flight", "Event records queued or being sent.", func(s ExportStats) int { return int(s.InFlight) }),
}

// Descriptions of the labelled metrics.
var (
	descLost = prometheus.NewDesc(Namespace+"_monitor_lost_events_total",
		"Events the method reported lost, by the reason it gave (0 where it cannot count them).", []string{"reason"}, nil)
	descLossReports = prometheus.NewDesc(Namespace+"_monitor_loss_reports_total",
		"Losses the method reported, by reason.", []string{"reason"}, nil)
	descRunning = prometheus.NewDesc(Namespace+"_monitor_running_method",
		"The monitoring method running: 1 for it, none when none runs.", []string{"method"}, nil)
	descState = prometheus.NewDesc(Namespace+"_monitor_method_state",
		"Each method's state: 1 for the state it is in (running, skipped, stopped, not tried).", []string{"method", "state"}, nil)
	descExportDropped = prometheus.NewDesc(Namespace+"_export_dropped_total",
		"Event records the exporter dropped, by reason.", []string{"reason"}, nil)
)

// Collector is a prometheus.Collector over proctrack's counters. Register
// it with a prometheus.Registry; it is safe for concurrent use.
type Collector struct {
	cfg     Config
	events  *prometheus.CounterVec
	lookups *prometheus.HistogramVec

	mu       sync.Mutex
	observed map[eventLabel]prometheus.Counter
}

type eventLabel struct {
	kind   process.EventKind
	method string
}

// New returns a Collector reading what cfg names.
func New(cfg Config) *Collector {
	if cfg.Cache == nil && cfg.Monitor != nil {
		cfg.Cache = cfg.Monitor.Cache()
	}
	if cfg.LookupBuckets == nil {
		cfg.LookupBuckets = DefaultLookupBuckets
	}
	return &Collector{
		cfg: cfg,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_total",
			Help: "Events the program consumed from the monitor, by kind and method."}, []string{"kind", "method"}),
		lookups: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "socket_lookup_duration_seconds",
			Help:    "Connection to process lookups, by the source that answered (sock_diag, proc_net, recent, ebpf; miss when none did).",
			Buckets: cfg.LookupBuckets}, []string{"source"}),
		observed: map[eventLabel]prometheus.Counter{},
	}
}

// Observe counts one event the program consumed (proctrack_events_total).
func (c *Collector) Observe(ev *process.Event) {
	l := eventLabel{ev.Kind, ev.Method}
	c.mu.Lock()
	ctr, ok := c.observed[l]
	if !ok {
		ctr = c.events.WithLabelValues(ev.Kind.String(), ev.Method)
		c.observed[l] = ctr
	}
	c.mu.Unlock()
	ctr.Inc()
}

// Lookup is Config.Resolver's Lookup, timed into
// proctrack_socket_lookup_duration_seconds by the source that answered.
func (c *Collector) Lookup(proto sockets.Proto, src, dst netip.AddrPort) (*process.Process, sockets.SocketInfo, error) {
	start := time.Now()
	p, info, err := c.cfg.Resolver.Lookup(proto, src, dst)
	source := info.Source
	if err != nil || source == "" {
		source = "miss"
	}
	c.lookups.WithLabelValues(source).Observe(time.Since(start).Seconds())
	return p, info, err
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	if c.cfg.Monitor != nil {
		describe(ch, monitorMetrics)
		ch <- descLost
		ch <- descLossReports
		ch <- descRunning
		ch <- descState
	}
	if c.cfg.Cache != nil {
		describe(ch, cacheMetrics)
	}
	if c.cfg.Resolver != nil {
		describe(ch, socketMetrics)
	}
	if c.cfg.Hasher != nil {
		describe(ch, checksumMetrics)
	}
	if c.cfg.Export != nil {
		describe(ch, exportMetrics)
		ch <- descExportDropped
	}
	c.events.Describe(ch)
	c.lookups.Describe(ch)
}

// Collect implements prometheus.Collector: it reads every part's counters.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if m := c.cfg.Monitor; m != nil {
		st := m.Stats()
		collect(ch, monitorMetrics, st)
		for _, reason := range sortedKeys(st.Losses) {
			l := st.Losses[reason]
			ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(l.Events), reason)
			ch <- prometheus.MustNewConstMetric(descLossReports, prometheus.CounterValue, float64(l.Reports), reason)
		}
		status := m.Status()
		if status.Running != "" {
			ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, 1, status.Running)
		}
		for _, ms := range status.Methods {
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, 1, ms.Method, ms.State)
		}
	}
	if c.cfg.Cache != nil {
		collect(ch, cacheMetrics, c.cfg.Cache.Stats())
	}
	if c.cfg.Resolver != nil {
		collect(ch, socketMetrics, c.cfg.Resolver.Stats())
	}
	if c.cfg.Hasher != nil {
		collect(ch, checksumMetrics, c.cfg.Hasher.Stats())
	}
	if c.cfg.Export != nil {
		st := c.cfg.Export()
		collect(ch, exportMetrics, st)
		for _, reason := range sortedKeys(st.Dropped) {
			ch <- prometheus.MustNewConstMetric(descExportDropped, prometheus.CounterValue, float64(st.Dropped[reason]), reason)
		}
	}
	c.events.Collect(ch)
	c.lookups.Collect(ch)
}

func describe[S any](ch chan<- *prometheus.Desc, ms []metric[S]) {
	for _, m := range ms {
		ch <- m.desc
	}
}

func collect[S any](ch chan<- prometheus.Metric, ms []metric[S], s S) {
	for _, m := range ms {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(s))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
