// Package proc is the /proc scanning method, the last rung of the ladder: it
// needs no privilege and works everywhere /proc is mounted, at the price of
// missing processes that live less than one scan interval.
//
// Every Interval it lists /proc and compares each pid's identity (start
// ticks, /proc/<pid>/stat) and binary (the /proc/<pid>/exe link) with the
// previous scan (a zombie counts as gone): a new identity is reported as EventExec (the scan cannot
// tell a fork from an exec, and the process has an image), a vanished one as
// EventExit, and a changed binary under the same identity as EventExec. The
// monitor reads the rest of each process from /proc.
package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proctrack/proctrack/internal/loop"
	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// DefaultInterval is the scan interval when Config.Interval is 0.
const DefaultInterval = 500 * time.Millisecond

// Config configures the proc method.
type Config struct {
	// Interval between scans.
	Interval time.Duration
	// Root is where procfs is mounted ("/proc" when empty).
	Root string
}

// Source scans /proc. Create it with New.
type Source struct {
	cfg    Config
	events atomic.Uint64
	errs   atomic.Uint64
	scans  atomic.Uint64

	mu   sync.Mutex // serializes Start
	run  loop.Runner
	seen map[int]seenProc // owned by the scanning goroutine after Start
}

type seenProc struct {
	start uint64
	exe   string
}

// New returns a proc Source.
func New(cfg Config) *Source {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Root == "" {
		cfg.Root = procfs.DefaultRoot
	}
	return &Source{cfg: cfg}
}

// Name returns process.MethodProc.
func (s *Source) Name() string { return process.MethodProc }

// Start takes the first snapshot of /proc (reporting nothing for what is
// there already) and scans every Interval from then on, until ctx ends or
// Close is called. A Source starts once: later Starts return an error
// matching methods.ErrClosed.
func (s *Source) Start(ctx context.Context, sink methods.Sink) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run.Running() || s.run.Done() != nil {
		return fmt.Errorf("proc: %w", methods.ErrClosed)
	}
	if _, err := os.Stat(s.cfg.Root + "/self/stat"); err != nil {
		return fmt.Errorf("%w: proc: %s is not a mounted procfs: %v", methods.ErrUnavailable, s.cfg.Root, err)
	}
	s.seen = s.scan(nil, nil)
	return s.run.Start(ctx, nil, func(ctx context.Context) {
		loop.Every(ctx, s.cfg.Interval, func() { s.seen = s.scan(s.seen, sink) })
	})
}

// scan lists /proc and, with a sink, reports the differences from prev.
func (s *Source) scan(prev map[int]seenProc, sink methods.Sink) map[int]seenProc {
	s.scans.Add(1)
	pids, err := procfs.PIDs(s.cfg.Root)
	if err != nil {
		s.errs.Add(1)
		return prev
	}
	now := time.Now()
	cur := make(map[int]seenProc, len(pids))
	for _, pid := range pids {
		st, _, err := procfs.ReadStat(s.cfg.Root, pid)
		if err != nil {
			if !errors.Is(err, procfs.ErrGone) {
				s.errs.Add(1)
			}
			continue
		}
		if st.State == 'Z' || st.State == 'X' {
			continue // exited, not reaped yet: gone for this method
		}
		exe, _ := os.Readlink(procfs.Path(s.cfg.Root, pid, "exe"))
		sp := seenProc{start: st.StartTicks, exe: exe}
		cur[pid] = sp
		if sink == nil {
			continue
		}
		old, ok := prev[pid]
		switch {
		case ok && old.start == sp.start && old.exe == sp.exe:
			continue
		case ok && old.start != sp.start:
			// The pid was reused between scans: the old process exited.
			s.emit(sink, &process.Event{Kind: process.EventExit, PID: pid, Time: now,
				Process: gone(pid, old.start)})
		}
		s.emit(sink, &process.Event{Kind: process.EventExec, PID: pid, TID: pid, PPID: st.PPID, Time: now})
	}
	if sink != nil {
		for pid, old := range prev {
			if _, ok := cur[pid]; !ok {
				s.emit(sink, &process.Event{Kind: process.EventExit, PID: pid, Time: now,
					Process: gone(pid, old.start)})
			}
		}
	}
	return cur
}

// gone names an exited process by its identity so the monitor marks the
// right cache entry.
func gone(pid int, start uint64) *process.Process {
	p := process.NewProcessEmpty(pid, "")
	p.Starttime = int64(start)
	return p
}

func (s *Source) emit(sink methods.Sink, ev *process.Event) {
	ev.Method = process.MethodProc
	s.events.Add(1)
	sink.Event(ev)
}

// Close stops scanning and waits for the scanner. It may be called more
// than once.
func (s *Source) Close() error { return s.run.Close() }

// Stats returns the counters. The proc method cannot know what it missed,
// so Lost stays 0: processes shorter than Interval are never seen.
func (s *Source) Stats() methods.Stats {
	return methods.Stats{Events: s.events.Load(), Errors: s.errs.Load()}
}

// Scans returns how many scans ran.
func (s *Source) Scans() uint64 { return s.scans.Load() }
