package cache

import (
	"github.com/proctrack/proctrack/procmon/process"
)

// IsInStoreByPID returns the newest cached process with pid. An entry that
// has not been confirmed for RevalidateAfter is checked against
// /proc/<pid>/stat first: if the pid now belongs to another process the old
// entry is marked exited and not returned (a reused pid is never reported as
// its old owner). An exited process is returned during its grace period.
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

// valid reports whether e may answer a lookup by pid at t, re-reading /proc
// when the entry's last confirmation is older than RevalidateAfter.
func (s *EventsStore) valid(e *entry, t int64) bool {
	if s.expired(e, t) {
		return false
	}
	if t-e.confirmed.Load() < int64(s.cfg.RevalidateAfter) {
		return true
	}
	s.revalidations.Add(1)
	k, err := process.CurrentKey(e.key.PID)
	e.confirmed.Store(t)
	switch {
	case err == nil && k == e.key:
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
