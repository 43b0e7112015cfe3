package seccomp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/methods/audit"
	"github.com/proctrack/proctrack/procmon/process"
)

// ActionViolated is the event action of a seccomp violation report, as
// Auditbeat names it: an event with Kind process.EventSeccomp is a
// "violated-seccomp-policy" event.
const ActionViolated = "violated-seccomp-policy"

// DefaultWatchBuffer is the default WatcherConfig.Buffer.
const DefaultWatchBuffer = 1024

// WatcherConfig configures a Watcher. The zero value is ready to use.
type WatcherConfig struct {
	// Buffer is the capacity of the Events channel; a violation that finds
	// it full is dropped and counted (Dropped). 0 means DefaultWatchBuffer.
	Buffer int
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// Audit configures the audit source; Multicast is forced on.
	Audit audit.Config
}

// Watcher reports seccomp violations of every process on the host: the
// AUDIT_SECCOMP records the kernel writes when a filter returns
// kill_process, kill_thread or log, or any action but allow for a filter
// installed with SECCOMP_FILTER_FLAG_LOG (Policy.LogViolations), provided
// the action is listed in /proc/sys/kernel/seccomp/actions_logged.
//
// It reads the audit method (methods/audit) in read-only multicast mode,
// whatever method the monitor runs and beside an audit daemon, and delivers
// only the process.EventSeccomp events, each an ActionViolated report:
// PID and Process (pid, comm, exe, uid), Syscall.Name, Number, Arch
// ("x86_64", "aarch64") and SeccompAction ("log", "errno",
// "kill_process", ...). It needs CAP_AUDIT_READ (and, for the audit
// source's rules, CAP_AUDIT_CONTROL); without them Start fails with an
// error matching methods.ErrUnavailable. The audit source still adds its
// process rules and enables audit if it was off (see methods/audit); their
// records are read and dropped here.
type Watcher struct {
	cfg    WatcherConfig
	src    *audit.Source
	events chan process.Event
	done   chan struct{}

	mu      sync.Mutex
	started bool
	closed  bool

	received, dropped, lost atomic.Uint64
}

// NewWatcher returns a Watcher; nothing is opened until Start.
func NewWatcher(cfg WatcherConfig) *Watcher {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultWatchBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ac := cfg.Audit
	ac.Multicast = true
	if ac.Logger == nil {
		ac.Logger = cfg.Logger
	}
	return &Watcher{cfg: cfg, src: audit.New(ac), events: make(chan process.Event, cfg.Buffer), done: make(chan struct{})}
}

// Start joins the audit multicast group; violations are delivered on
// Events from then on, until ctx ends or Close is called (Events is then
// closed). It may be called once: later calls return an error matching
// methods.ErrClosed.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.closed {
		return fmt.Errorf("seccomp: a Watcher can be started once: %w", methods.ErrClosed)
	}
	w.started = true
	if err := w.src.Start(ctx, (*watchSink)(w)); err != nil {
		w.closed = true
		close(w.done)
		close(w.events)
		return fmt.Errorf("seccomp: watch violations: %w", err)
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = w.Close()
		case <-w.done:
		}
	}()
	return nil
}

// Events delivers the violations. It is closed by Close.
func (w *Watcher) Events() <-chan process.Event { return w.events }

// Close stops the audit source (removing its rules) and closes Events.
func (w *Watcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	close(w.done)
	if !w.started {
		close(w.events)
		return nil
	}
	err := w.src.Close()
	// The source's goroutine has returned: nothing sends any more.
	close(w.events)
	if err != nil {
		return fmt.Errorf("seccomp: close watcher: %w", err)
	}
	return nil
}

// WatcherStats are a Watcher's counters.
type WatcherStats struct {
	Violations uint64 // violations received
	Dropped    uint64 // violations the consumer did not take in time
	Lost       uint64 // audit records reported lost (any kind, not only seccomp)
}

// Stats returns the counters.
func (w *Watcher) Stats() WatcherStats {
	return WatcherStats{Violations: w.received.Load(), Dropped: w.dropped.Load(), Lost: w.lost.Load()}
}

// watchSink is the audit source's sink: it keeps the seccomp events.
type watchSink Watcher

func (s *watchSink) Event(ev *process.Event) {
	if ev.Kind != process.EventSeccomp {
		return
	}
	s.received.Add(1)
	select {
	case s.events <- *ev:
	default:
		s.dropped.Add(1)
	}
}

func (s *watchSink) Lost(n uint64, reason string) {
	s.lost.Add(n)
	s.cfg.Logger.Warn("seccomp watcher: audit records lost", "n", n, "reason", reason)
}

var _ methods.Sink = (*watchSink)(nil)

// WatchViolations starts a Watcher until ctx ends and returns its events
// and a function that stops it.
func WatchViolations(ctx context.Context, logger *slog.Logger) (<-chan process.Event, func() error, error) {
	w := NewWatcher(WatcherConfig{Logger: logger})
	if err := w.Start(ctx); err != nil {
		return nil, nil, err
	}
	return w.Events(), w.Close, nil
}
