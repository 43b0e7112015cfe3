// Package sinktest holds a methods.Sink that records what a monitoring method
// reports, for the methods' tests.
package sinktest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proctrack/proctrack/procmon/process"
)

// Recorder is a methods.Sink that keeps every event and loss report, for
// the tests of a monitoring method.
type Recorder struct {
	mu     sync.Mutex
	cond   *sync.Cond
	events []*process.Event
	losses []string
	lost   atomic.Uint64
	// Block, when set before the source starts, makes Event wait until it
	// is closed: a stuck consumer.
	Block chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// Event records ev.
func (r *Recorder) Event(ev *process.Event) {
	if r.Block != nil {
		<-r.Block
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.cond.Broadcast()
}

// Lost records a loss report.
func (r *Recorder) Lost(n uint64, reason string) {
	r.mu.Lock()
	r.losses = append(r.losses, fmt.Sprintf("%d: %s", n, reason))
	r.lost.Add(n)
	r.mu.Unlock()
	r.cond.Broadcast()
}

// LostCount returns the sum of the losses reported. It takes no lock, so a
// WaitUntil condition may call it.
func (r *Recorder) LostCount() uint64 { return r.lost.Load() }

// Snapshot returns the events and loss reports so far.
func (r *Recorder) Snapshot() ([]*process.Event, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*process.Event(nil), r.events...), append([]string(nil), r.losses...)
}

// WaitUntil waits until cond, called under the lock with the events so far,
// is true; false after timeout.
func (r *Recorder) WaitUntil(timeout time.Duration, cond func([]*process.Event) bool) bool {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, r.cond.Broadcast)
	defer t.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond(r.events) {
		if !time.Now().Before(deadline) {
			return false
		}
		r.cond.Wait()
	}
	return true
}

// WaitFor waits for an event of kind about pid that match accepts (nil:
// any) and returns it, or nil after timeout.
func (r *Recorder) WaitFor(kind process.EventKind, pid int, match func(*process.Event) bool, timeout time.Duration) *process.Event {
	var found *process.Event
	r.WaitUntil(timeout, func(evs []*process.Event) bool {
		for _, ev := range evs {
			if ev.Kind == kind && ev.PID == pid && (match == nil || match(ev)) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// All returns the events of kind about pid (any pid when pid is 0).
func (r *Recorder) All(kind process.EventKind, pid int) []*process.Event {
	evs, _ := r.Snapshot()
	var out []*process.Event
	for _, ev := range evs {
		if ev.Kind == kind && (pid == 0 || ev.PID == pid) {
			out = append(out, ev)
		}
	}
	return out
}
