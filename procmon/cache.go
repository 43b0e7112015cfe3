package procmon

import "github.com/proctrack/proctrack/cache"

// EventsStore is the process cache; see cache.EventsStore.
type EventsStore = cache.EventsStore

// ExecEventItem is one entry of the process cache.
type ExecEventItem = cache.ExecEventItem

// NewEventsStore returns a process cache with the default configuration.
func NewEventsStore() *EventsStore { return cache.NewEventsStore() }

// EventsCache is the default process cache, as in the seed API. Creating it
// allocates two empty maps and starts nothing; its garbage collector runs
// when the default monitor starts it, or when a caller calls
// EventsCache.Start.
var EventsCache = cache.NewEventsStore()
