// Package proc is the /proc scanning method, the last rung of the ladder: it
// needs no privilege and works everywhere /proc is mounted, at the price of
// missing processes that live less than one scan interval.
//
// Every Interval it lists /proc and compares each pid's identity (start
// ticks, /proc/<pid>/stat) and binary (the /proc/<pid>/exe link) with the
// previous scan (a zombie counts as gone): a new identity is reported as
// EventExec, or as EventFork when it is a child that has not exec'd yet (it
// runs its parent's binary with its parent's memory layout: where exec put
// the stack, arguments and environment, procfs.Stat.Layout, which fork
// copies and exec places anew); a vanished one as EventExit; a changed
// binary or layout under the same identity as EventExec. The monitor reads
// the rest of each process from /proc.
//
// A child that exec'd its parent's binary is taken for a fork only where
// exec placed everything exactly where the parent's exec had: never with
// the stack randomized (randomize_va_space >= 1, the default), where the
// chance is nil. Where the layout cannot be read (no privilege) a new
// identity is an exec, as before.
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
	start  uint64
	exe    string
	layout [3]uint64
}

// forkOf reports whether sp, a new identity whose parent is ppid, is a
// child that has not exec'd: the parent (as seen in this scan, else read
// now) runs the same binary with the same layout.
func (s *Source) forkOf(sp seenProc, ppid int, cur map[int]seenProc) bool {
	if sp.layout == ([3]uint64{}) || ppid <= 0 {
		return false
	}
	parent, ok := cur[ppid]
	if !ok {
		st, _, err := procfs.ReadStat(s.cfg.Root, ppid)
		if err != nil {
			return false
		}
		exe, _ := os.Readlink(procfs.Path(s.cfg.Root, ppid, "exe"))
		parent = seenProc{start: st.StartTicks, exe: exe, layout: st.Layout}
	}
	return parent.exe == sp.exe && parent.layout == sp.layout && sp.exe != ""
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
		sp := seenProc{start: st.StartTicks, exe: exe, layout: st.Layout}
		cur[pid] = sp
		if sink == nil {
			continue
		}
		old, ok := prev[pid]
		switch {
		case ok && old.start == sp.start && old.exe == sp.exe && sameLayout(old.layout, sp.layout):
			continue
		case ok && old.start != sp.start:
			// The pid was reused between scans: the old process exited.
			s.emit(sink, &process.Event{Kind: process.EventExit, PID: pid, Time: now,
				Process: gone(pid, old.start)})
		}
		kind := process.EventExec
		if (!ok || old.start != sp.start) && s.forkOf(sp, st.PPID, cur) {
			kind = process.EventFork // not exec'd yet: it has no image of its own
		}
		s.emit(sink, &process.Event{Kind: kind, PID: pid, TID: pid, PPID: st.PPID, Time: now})
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

// sameLayout reports whether two layouts of one identity show no exec
// between them; an unreadable (zero) one shows nothing.
func sameLayout(a, b [3]uint64) bool {
	return a == b || a == [3]uint64{} || b == [3]uint64{}
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
