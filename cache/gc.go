package cache

import (
	"time"

	"github.com/proctrack/proctrack/procmon/process"
)

// Exit records that the process with Key k exited. It stays findable for the
// grace period, then DeleteOldItems removes it.
func (s *EventsStore) Exit(k process.Key) {
	s.mu.RLock()
	e := s.byKey[k]
	s.mu.RUnlock()
	if e != nil {
		s.markExited(e, now())
	}
}

// Delete schedules the newest cached process with pid for deletion, as the
// seed API names it: a process that exited (or whose pid another process
// has now) is marked exited and removed after the grace period. A process
// that still runs is left alone: live processes are never removed.
func (s *EventsStore) Delete(pid int) {
	s.mu.RLock()
	e := s.byPID[pid]
	s.mu.RUnlock()
	if e == nil {
		return
	}
	s.revalidations.Add(1)
	t := now()
	if k, err := process.CurrentKey(pid); err == nil && k == e.proc.Key() {
		e.confirmed.Store(t)
		return
	}
	s.markExited(e, t)
}

// DeleteOldItems removes the processes that exited longer than the grace
// period ago, except those a live cached process has as an ancestor. First
// it confirms, through /proc, that entries not known to have exited and not
// confirmed for a GCPeriod still run, so exits are noticed even without an
// event source. Live processes are never removed.
func (s *EventsStore) DeleteOldItems() {
	t := now()
	var stale []*entry
	s.mu.RLock()
	for _, e := range s.byKey {
		if e.exited.Load() == 0 && t-e.confirmed.Load() >= int64(s.cfg.GCPeriod) {
			stale = append(stale, e)
		}
	}
	s.mu.RUnlock()
	for _, e := range stale { // no store lock held while /proc is read
		s.revalidations.Add(1)
		if k, err := process.CurrentKey(e.key.PID); err == nil && k == e.key {
			e.confirmed.Store(t)
		} else {
			s.markExited(e, t)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	needed := make(map[process.Key]bool)
	for _, e := range s.byKey {
		if e.exited.Load() != 0 {
			continue
		}
		for a := e.proc.Parent; a != nil; a = a.Parent {
			k := a.Key()
			if needed[k] {
				break
			}
			needed[k] = true
		}
	}
	for k, e := range s.byKey {
		if s.expired(e, t) && !needed[k] {
			s.remove(e)
			s.removed.Add(1)
		}
	}
}

// ExitMissing marks exited every live entry that is not in live and was last
// confirmed before since: after a /proc scan that started at since, what the
// scan did not find has exited (entries confirmed later came from events
// newer than the scan). It returns how many entries it marked.
func (s *EventsStore) ExitMissing(live map[process.Key]bool, since time.Time) int {
	t, cut := now(), since.UnixNano()
	n := 0
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, e := range s.byKey {
		if e.exited.Load() == 0 && !live[k] && e.confirmed.Load() < cut {
			s.markExited(e, t)
			n++
		}
	}
	return n
}
