package procmon

import (
	"slices"

	"github.com/proctrack/proctrack/cache"
)

// EventsStore is the process cache (a cache.EventsStore) with the seed API's
// lookups: IsInStore and IsInStoreByPID answer with an ExecEventItem whose
// Proc is a copy, as OpenSnitch's do. Every other method is
// cache.EventsStore's (Get, Peek and Range answer with cache.ExecEventItem,
// whose Proc is the cached process itself). Pass the embedded
// *cache.EventsStore where proctrack's packages take a cache
// (procmon.Config.Cache, sockets.Config.Cache).
type EventsStore struct {
	*cache.EventsStore
}

// ExecEventItem is one entry of the process cache, as the seed API's
// lookups return it. Proc is a snapshot of the cached process taken by the
// lookup (see Process.CopyInto): `newProc := item.Proc` or `&item.Proc`
// gives a Process whose fields the caller may change without changing the
// cache; what they point to (Parent, Tree, Args, Env, Checksums) is shared
// with the cache and read-only. Updating the cache is Update(&item.Proc, p),
// UpdateItem or Add: the entry is found by the snapshot's identity (pid and
// start time).
type ExecEventItem struct {
	Proc Process
	// LastSeen is when an event or a lookup last touched the entry (unix
	// nanoseconds).
	LastSeen int64
	// TTL is the grace period in seconds an exited entry stays.
	TTL int32
	// Exited is when the process exited (unix nanoseconds), 0 while alive.
	Exited int64
	// Execs counts the execs seen since the entry was added.
	Execs int32
	// PrevPaths are the paths of earlier images, oldest first.
	PrevPaths []string
}

// fill sets item from a cache item, copying the cached process.
func (item *ExecEventItem) fill(it cache.ExecEventItem) {
	it.Proc.CopyInto(&item.Proc)
	item.LastSeen, item.TTL, item.Exited = it.LastSeen, it.TTL, it.Exited
	item.Execs, item.PrevPaths = it.Execs, slices.Clone(it.PrevPaths)
}

// IsInStoreByPID returns a copy of the newest cached process with pid; see
// cache.EventsStore.IsInStoreByPID for which entries answer (a reused pid
// never answers as its old owner; an exited process answers during its
// grace period).
func (s *EventsStore) IsInStoreByPID(pid int) (item ExecEventItem, found bool) {
	it, found := s.EventsStore.IsInStoreByPID(pid)
	if found {
		item.fill(it)
	}
	return
}

// IsInStore looks a process up as cache.EventsStore.IsInStore does (by the
// exact identity when proc has a start time) and returns a copy of it;
// needsUpdate reports that proc's image differs from the cached one.
func (s *EventsStore) IsInStore(pid int, proc *Process) (item ExecEventItem, needsUpdate, found bool) {
	it, needsUpdate, found := s.EventsStore.IsInStore(pid, proc)
	if found {
		item.fill(it)
	}
	return
}

// NewEventsStore returns a process cache with the default configuration.
func NewEventsStore() *EventsStore { return &EventsStore{cache.NewEventsStore()} }

// EventsCache is the default process cache, as in the seed API. Creating it
// allocates two empty maps and starts nothing; its garbage collector runs
// when the default monitor starts it, or when a caller calls
// EventsCache.Start.
var EventsCache = NewEventsStore()
