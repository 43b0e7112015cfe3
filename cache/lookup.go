package cache

import (
	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/procmon/process"
)

// IsInStoreByPID returns the newest cached process with pid. Every call
// checks that the pid still names the cached process. While the store holds
// the kernel's exit counter (see Start), an unchanged count of exits in the
// pid's slot since the entry was last confirmed proves it with no system
// call; a changed count (or no counter) costs one statx of /proc/<pid> (its
// inode number, which procfs changes with the process) against the one seen
// when the entry was last confirmed, and only when that is unknown or
// changed is /proc/<pid>/stat read (with the counter, a changed count reads
// /proc/<pid>/stat at once, and records the count again). If the pid now belongs to
// another process the entry is marked exited and not returned: a reused pid
// is never reported as its old owner, whatever the delay since the reuse
// and with no event source. An exited process is returned during its grace
// period while its pid is not in use.
func (s *EventsStore) IsInStoreByPID(pid int) (item ExecEventItem, found bool) {
	t := now() // once: the clock costs as much as the rest of a hit
	s.mu.RLock()
	e := s.byPID[pid]
	s.mu.RUnlock()
	if e == nil || !s.valid(e, t) {
		return ExecEventItem{}, false
	}
	e.lastSeen.Store(t)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.item(e), true
}

// IsInStore looks a process up. With proc carrying a start time the lookup
// is by its exact Key; otherwise by pid, as IsInStoreByPID. needsUpdate
// reports that proc's image (path or arguments) differs from the cached one:
// the process exec'd since it was cached.
func (s *EventsStore) IsInStore(pid int, proc *process.Process) (item ExecEventItem, needsUpdate, found bool) {
	if proc != nil && proc.Starttime != 0 {
		item, found = s.Get(process.Key{PID: pid, StartTicks: uint64(proc.Starttime)})
	} else {
		item, found = s.IsInStoreByPID(pid)
	}
	if !found || proc == nil || proc == item.Proc {
		return item, false, found
	}
	needsUpdate = proc.Path != "" && (proc.Path != item.Proc.Path || (proc.Args != nil && !equalArgs(proc.Args, item.Proc.Args)))
	return item, needsUpdate, found
}

func equalArgs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Get returns the cached process with Key k, exited or not, as long as the
// store holds it (an exact Key cannot name another process, so no grace
// period applies: exited ancestors of live processes stay findable).
func (s *EventsStore) Get(k process.Key) (ExecEventItem, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byKey[k]
	if e == nil {
		return ExecEventItem{}, false
	}
	e.lastSeen.Store(now())
	return s.item(e), true
}

// expired reports whether e exited longer than the grace period ago.
func (s *EventsStore) expired(e *entry, t int64) bool {
	ex := e.exited.Load()
	return ex != 0 && t-ex > int64(s.cfg.GracePeriod)
}

// valid reports whether e may answer a lookup by pid at t: no task of the
// pid's slot exited since e was confirmed running (the exit counter), or the
// pid's /proc directory is the one last confirmed to be e's
// (procfs.DirIno), or /proc/<pid>/stat shows e's start time, or the pid is
// not in use (e has exited, within its grace period).
func (s *EventsStore) valid(e *entry, t int64) bool {
	if s.expired(e, t) {
		return false
	}
	if ec := s.counter.Load(); ec != nil {
		if g := ec.Gen(e.key.PID); g != 0 && g == e.gen.Load() {
			return true
		} else if g != 0 {
			// The count moved (or was never recorded): /proc/<pid>/stat
			// shows e running and not exiting, after the count was read.
			s.revalidations.Add(1)
			if g := ec.Confirm(e.key.PID, e.key.StartTicks); g != 0 {
				e.gen.Store(g)
				e.confirmed.Store(t)
				return true
			}
		}
	}
	ident, ierr := procfs.DirIno(procfs.DefaultRoot, e.key.PID)
	if ierr == nil && ident == e.ident.Load() {
		return true
	}
	s.revalidations.Add(1)
	k, err := process.CurrentKey(e.key.PID)
	e.confirmed.Store(t)
	switch {
	case err == nil && k == e.key:
		// Read before the start time that matched, ident is e's directory.
		if ierr == nil {
			e.ident.Store(ident)
		}
		return true
	case err == nil || k.StartTicks != 0 && k != e.key:
		// The pid belongs to another process now.
		s.markExited(e, t)
		s.reuses.Add(1)
		return false
	default:
		// Gone (or a zombie): exited, and findable for the grace period.
		s.markExited(e, t)
		return true
	}
}

// markExited records e's exit at t unless one is recorded.
func (s *EventsStore) markExited(e *entry, t int64) {
	if e.exited.CompareAndSwap(0, t) {
		s.exits.Add(1)
	}
}

// Peek returns the newest cached process with pid without reading /proc:
// for a caller that keeps the cache current itself (a running monitor).
// Exited processes are returned during their grace period.
func (s *EventsStore) Peek(pid int) (ExecEventItem, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byPID[pid]
	if e == nil || s.expired(e, now()) {
		return ExecEventItem{}, false
	}
	return s.item(e), true
}
