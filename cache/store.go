package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proctrack/proctrack/checksum"
	"github.com/proctrack/proctrack/internal/exits"
	"github.com/proctrack/proctrack/internal/intern"
	"github.com/proctrack/proctrack/internal/loop"
	"github.com/proctrack/proctrack/procmon/process"
)

// Defaults of Config.
const (
	DefaultGracePeriod = 10 * time.Second
	DefaultGCPeriod    = 30 * time.Second
	DefaultMaxEntries  = 65536
	// DefaultRevalidateAfter is unused.
	//
	// Deprecated: see Config.RevalidateAfter.
	DefaultRevalidateAfter = time.Second
)

// maxAncestorReads bounds how many missing ancestors one Add reads from /proc.
const maxAncestorReads = 64

// maxPrevPaths bounds the exec history kept per entry.
const maxPrevPaths = 4

// Config configures an EventsStore. Zero fields take the defaults.
type Config struct {
	// GracePeriod is how long an exited process stays findable.
	GracePeriod time.Duration
	// GCPeriod is how often Start runs DeleteOldItems (seed 000's gc_period).
	GCPeriod time.Duration
	// MaxEntries bounds the number of cached processes.
	MaxEntries int
	// RevalidateAfter is ignored: a lookup by pid now checks on every call
	// that the pid still names the cached process (see IsInStoreByPID),
	// because an entry trusted for a while was answered after its pid had
	// been reused.
	//
	// Deprecated: lookups by pid are confirmed on every call.
	RevalidateAfter time.Duration
	// MaxArgsBytes and MaxEnvBytes bound what an entry keeps of its
	// process's arguments and environment (process.BoundArgs, BoundEnv),
	// whichever source gave them; a process cut is flagged (ArgsTruncated,
	// EnvTruncated) and counted in Stats. The defaults,
	// process.DefaultMaxArgsBytes (128 KiB) and DefaultMaxEnvBytes (64 KiB),
	// are also the most a /proc read keeps, so larger values are taken as
	// the defaults.
	MaxArgsBytes, MaxEnvBytes int
	// NoExitCounter makes every lookup by pid confirm the process from
	// /proc (one statx), as where the kernel's exit counter cannot run.
	// Otherwise, while the collector runs (Start), the store holds the
	// exit counter (internal/exits: a BPF program counting exits per pid
	// slot) and a lookup whose pid's slot is unchanged since the entry was
	// confirmed costs no system call.
	NoExitCounter bool
	// Hasher computes checksums; nil means a checksum.New with defaults.
	Hasher *checksum.Hasher
	// Logger receives debug logs; nil means slog.Default().
	Logger *slog.Logger
}

// ExecEventItem is a snapshot of one cache entry, as the seed API returns
// it. Proc is the cached version of the process at the time of the lookup:
// the store never changes it (a change of the process makes a new version),
// so it is read without locks and copied to be changed (see
// process.Process).
type ExecEventItem struct {
	Proc *process.Process
	// LastSeen is when an event or a lookup last touched the entry (unix
	// nanoseconds).
	LastSeen int64
	// TTL is the grace period in seconds an exited entry stays.
	TTL int32
	// Exited is when the process exited (unix nanoseconds), 0 while alive.
	Exited int64
	// Execs counts the execs seen since the entry was added.
	Execs int32
	// PrevPaths are the paths of earlier images, oldest first (at most 4),
	// shared with the store: read-only, as Proc (append makes a copy).
	PrevPaths []string
}

// entry is one cached process: its current version, replaced (never
// changed) when the process changes.
type entry struct {
	key       process.Key       // the identity, the same in every version
	proc      *process.Process  // the current version; guarded by the store lock
	self      *process.TreeItem // this process as an ancestor in its children's Tree (nil until a child needs it: ancestor)
	args      *intern.Ref[[]string]
	env       *intern.Ref[map[string]string]
	sums      *intern.Ref[map[string]string]
	lastSeen  atomic.Int64
	confirmed atomic.Int64  // last /proc confirmation that the process runs
	ident     atomic.Uint64 // procfs.DirIno of the pid when last confirmed (0 unknown)
	gen       atomic.Uint64 // exits.Counter.Confirm's value when last confirmed (0 unknown)
	exited    atomic.Int64
	execs     int32    // guarded by the store lock
	prevPaths []string // guarded by the store lock
}

// Stats are the store's counters.
type Stats struct {
	Entries       int    // cached processes
	Exited        int    // of which exited, within the grace period
	Added         uint64 // processes added
	Execs         uint64 // execs applied to cached processes
	Exits         uint64 // exits recorded
	Removed       uint64 // exited entries removed after the grace period
	Evicted       uint64 // entries evicted at MaxEntries
	PIDReuses     uint64 // lookups that found a cached pid taken by a new process
	AncestorReads uint64 // ancestors read from /proc because the cache lacked them
	Revalidations uint64 // /proc reads made to confirm an entry
	Checksums     uint64 // processes whose checksums were computed
	ChecksumErrs  uint64 // checksum computations that failed
	ArgsTruncated uint64 // processes cached with their arguments cut (once each)
	EnvTruncated  uint64 // processes cached with environment variables left out (once each)
}

// EventsStore is the process cache. Create it with New or NewEventsStore;
// Start runs its garbage collector until Close.
type EventsStore struct {
	cfg Config
	log *slog.Logger

	mu    sync.RWMutex
	byKey map[process.Key]*entry
	byPID map[int]*entry // the newest process seen with each pid

	argsTab *intern.Table[[]string]
	mapTab  *intern.Table[map[string]string]

	sumMu   sync.RWMutex
	algos   []string // checksum algorithms, in the order added
	compute bool
	hasher  *checksum.Hasher

	added, execs, exits, removed, evicted, reuses atomic.Uint64
	ancestorReads, revalidations, sums, sumErrs   atomic.Uint64
	argsCut, envCut                               atomic.Uint64

	runMu sync.Mutex
	run   *loop.Runner // the collector's current run

	counter atomic.Pointer[exits.Counter] // the exit counter, held while the collector runs
}

// NewEventsStore returns a store with the default Config, as the seed API
// names it. It starts nothing; see Start.
func NewEventsStore() *EventsStore { return New(Config{}) }

// New returns a store configured by cfg. It starts nothing; see Start.
func New(cfg Config) *EventsStore {
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.GCPeriod <= 0 {
		cfg.GCPeriod = DefaultGCPeriod
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxArgsBytes <= 0 || cfg.MaxArgsBytes > process.DefaultMaxArgsBytes {
		cfg.MaxArgsBytes = process.DefaultMaxArgsBytes
	}
	if cfg.MaxEnvBytes <= 0 || cfg.MaxEnvBytes > process.DefaultMaxEnvBytes {
		cfg.MaxEnvBytes = process.DefaultMaxEnvBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &EventsStore{
		cfg:     cfg,
		log:     log,
		byKey:   make(map[process.Key]*entry),
		byPID:   make(map[int]*entry),
		argsTab: intern.NewArgs(),
		mapTab:  intern.NewMap(),
		algos:   []string{checksum.HashMD5},
		hasher:  cfg.Hasher,
	}
}

// ErrStarted is returned by Start while the collector runs.
var ErrStarted = loop.ErrStarted

// Start runs the garbage collector (DeleteOldItems every GCPeriod) until ctx
// ends or Close is called; its goroutine has returned when Close returns.
// Unless Config.NoExitCounter, the store holds the kernel's exit counter
// for as long (where it cannot load, lookups by pid confirm with a statx as
// without it). Starting a running store returns an error matching
// ErrStarted.
//
// The store is the one long-lived value that may be started again once its
// collector has stopped: it holds data that outlives the monitors keeping
// it current (procmon.EventsCache outlives StopMonitor, and each new
// monitor runs its collector).
func (s *EventsStore) Start(ctx context.Context) error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.run != nil && s.run.Running() {
		return fmt.Errorf("cache: store: %w", ErrStarted)
	}
	s.run = new(loop.Runner)
	var ec *exits.Counter
	if !s.cfg.NoExitCounter {
		ec = exits.New()
		if err := ec.Start(ctx); err != nil {
			s.log.Debug("cache: lookups by pid confirm with a statx", "err", err)
			ec = nil
		}
	}
	s.counter.Store(ec)
	stop := func() {
		s.counter.CompareAndSwap(ec, nil)
		if ec != nil {
			_ = ec.Close()
		}
	}
	err := s.run.Start(ctx, stop, func(ctx context.Context) {
		loop.Every(ctx, s.cfg.GCPeriod, func() { s.DeleteOldItems() })
	})
	if err != nil {
		stop()
	}
	return err
}

// Close stops the garbage collector and waits for it. The store stays
// usable; Close on a store never started does nothing.
func (s *EventsStore) Close() error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.run != nil {
		_ = s.run.Close()
	}
	return nil
}

// Len returns the number of cached processes, exited ones included.
func (s *EventsStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey)
}

// Stats returns the store's counters.
func (s *EventsStore) Stats() Stats {
	s.mu.RLock()
	st := Stats{Entries: len(s.byKey)}
	for _, e := range s.byKey {
		if e.exited.Load() != 0 {
			st.Exited++
		}
	}
	s.mu.RUnlock()
	st.Added, st.Execs, st.Exits = s.added.Load(), s.execs.Load(), s.exits.Load()
	st.Removed, st.Evicted, st.PIDReuses = s.removed.Load(), s.evicted.Load(), s.reuses.Load()
	st.AncestorReads, st.Revalidations = s.ancestorReads.Load(), s.revalidations.Load()
	st.Checksums, st.ChecksumErrs = s.sums.Load(), s.sumErrs.Load()
	st.ArgsTruncated, st.EnvTruncated = s.argsCut.Load(), s.envCut.Load()
	return st
}

// item snapshots an entry. The caller holds the store lock (read or write).
func (s *EventsStore) item(e *entry) ExecEventItem {
	return ExecEventItem{
		Proc:     e.proc,
		LastSeen: e.lastSeen.Load(),
		TTL:      int32(s.cfg.GracePeriod / time.Second),
		Exited:   e.exited.Load(),
		Execs:    e.execs,
		// Shared, not copied (the event path looks up a few entries per
		// event): applyImage writes only past the end of every slice handed
		// out, and the cap makes a caller's append copy.
		PrevPaths: e.prevPaths[:len(e.prevPaths):len(e.prevPaths)],
	}
}

// Range calls fn for every cached process until fn returns false. It holds
// the store's read lock: fn must not call the store's writing methods.
func (s *EventsStore) Range(fn func(item ExecEventItem) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.byKey {
		if !fn(s.item(e)) {
			return
		}
	}
}

func now() int64 { return time.Now().UnixNano() }
