// Package methods defines what every monitoring method implements: a Source
// of process events that the monitor (package procmon) starts, feeds into
// the process cache and hands to the user. One sub-package per method:
// ebpf, netlink, audit, proc.
//
// A Source reports what its kernel interface tells, as fast as it can, and
// leaves the rest to the monitor: a netlink exec event carries only a pid,
// and the monitor reads /proc at once; an audit exec record carries the
// path and arguments, and the monitor only adds the start time.
package methods

import (
	"context"

	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/internal/loop"
	"github.com/proctrack/proctrack/procmon/process"
)

// ErrUnavailable is matched by the error of a Source that cannot run here;
// the error's text says why (missing privilege, kernel support, another
// owner of the interface). It is the same value as
// sockets/ebpf.ErrUnavailable.
var ErrUnavailable = kernel.ErrUnavailable

// ErrClosed is matched by the error of a Source's Start once it was
// started: a Source starts once, and runs until its Start context ends or
// Close is called.
var ErrClosed = loop.ErrClosed

// Source is one monitoring method.
type Source interface {
	// Name returns the method's name (process.MethodNetlink, ...).
	Name() string
	// Start opens the kernel interface and delivers events to sink from
	// its own goroutine until ctx ends or Close is called. It returns
	// once the interface is open (events from then on are delivered), or
	// an error matching ErrUnavailable when the method cannot run here.
	Start(ctx context.Context, sink Sink) error
	// Close stops the source, waits for its goroutines and restores
	// whatever it changed on the host.
	Close() error
	// Stats returns the source's counters.
	Stats() Stats
}

// Sink receives a source's events, from one goroutine at a time.
type Sink interface {
	// Event delivers one event. Its Process may be nil or partly filled;
	// the monitor completes it. Event returns quickly: it never waits for
	// the user's consumer.
	Event(ev *process.Event)
	// Lost reports that the source lost n events (n may be 0 when the
	// number is unknown, as after audit's ENOBUFS) for the reason given; the
	// monitor then reconciles the cache with /proc.
	Lost(n uint64, reason string)
}

// Flusher is implemented by a Sink that may hold events back, to finish
// them and hand them on together (the monitor's sink for a Batcher: its
// consumer is then woken once per batch, or less often during a burst,
// rather than once per event). The source calls Flush from the goroutine
// that calls Event.
type Flusher interface {
	// Flush is called after each batch the source read. With idle set
	// (the source read everything the kernel had and is about to wait for
	// more, or stops) the sink hands on every event it holds; without, it
	// may keep some for a bounded time.
	Flush(idle bool)
}

// Batcher is implemented by a Source that reads events in batches and calls
// Flush after each batch when its sink implements Flusher: only to such a
// source does the monitor give a sink that holds events back.
type Batcher interface {
	// FlushesSink is a marker: it does nothing.
	FlushesSink()
}

// Stats are a source's counters.
type Stats struct {
	Events    uint64 // events delivered
	Lost      uint64 // events known lost (overflows, sequence gaps, kernel counters)
	LostTimes uint64 // times a loss was reported (a loss of unknown size counts here only)
	Errors    uint64 // malformed or unexpected messages skipped
	Faults    uint64 // times the source found the kernel no longer reporting what it set up (audit: rules deleted, audit disabled)
}

// Failer is implemented by a Source that can stop on its own while it runs
// (its kernel interface failed under it, or what it set up was undone and
// could not be restored). The monitor then falls back to the next method.
type Failer interface {
	// Done returns a channel closed when the source has stopped, on its
	// own or by Close (nil before Start).
	Done() <-chan struct{}
	// Err returns why the source stopped on its own; nil while it runs
	// and after Close.
	Err() error
}

// Faulter is implemented by a Source that checks, while it runs, that the
// kernel still reports what it set up (Stats.Faults).
type Faulter interface {
	// LastFault says what the last fault found was and what was done
	// about it; "" when none was found.
	LastFault() string
}
