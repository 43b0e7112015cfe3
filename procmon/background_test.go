package procmon

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/proctrack/proctrack/procmon/process"
)

// TestDetailerSleeps runs the detailer alone and counts its wakeups: none
// while nothing is queued (it woke every DetailDelay/2, 20 times in this
// test's idle periods), and few for a burst of requests, which it all
// serves.
func TestDetailerSleeps(t *testing.T) {
	m, err := New(Config{DetailDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.detailer(ctx)
	defer func() {
		cancel()
		m.wg.Wait()
	}()
	q := &m.details
	idle := func() {
		t.Helper()
		before := q.wakeups.Load()
		time.Sleep(100 * time.Millisecond) // ten DetailDelays with nothing to do
		if n := q.wakeups.Load() - before; n != 0 {
			t.Errorf("%d wakeups with nothing queued", n)
		}
	}
	idle()
	before := q.wakeups.Load()
	const burst = 100
	for i := range burst {
		// Keys of no cached process: readDetails returns at once.
		m.scheduleDetails(process.Key{PID: 1 << 30, StartTicks: uint64(i)})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.mu.Lock()
		left := len(q.reqs)
		q.mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests still queued", left, burst)
		}
		time.Sleep(time.Millisecond)
	}
	// One wakeup for the first request, then one per due time: the burst
	// is queued within far less than DetailDelay, so a few suffice (not one
	// per request).
	if n := q.wakeups.Load() - before; n == 0 || n > burst/4 {
		t.Errorf("%d wakeups for a burst of %d requests", n, burst)
	}
	idle()
}

// TestDetailerCoalesces: requests that come one by one, as the execs of a
// storm do, are served a few at a time: the detailer wakes at most every
// DetailDelay/detailSlices, not at every request's due time (it woke about
// once per request before).
func TestDetailerCoalesces(t *testing.T) {
	const delay = 20 * time.Millisecond
	m, err := New(Config{DetailDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.detailer(ctx)
	defer func() {
		cancel()
		m.wg.Wait()
	}()
	q := &m.details
	before := q.wakeups.Load()
	const n = 100
	start := time.Now()
	for i := range n {
		m.scheduleDetails(process.Key{PID: 1 << 30, StartTicks: uint64(i)})
		time.Sleep(time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		q.mu.Lock()
		left := len(q.reqs)
		q.mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests still queued", left, n)
		}
	}
	// At most one wakeup per slice of the time the requests took to come
	// and be served, and the first.
	slices := int(time.Since(start)/(delay/detailSlices)) + 2
	if got := int(q.wakeups.Load() - before); got > slices {
		t.Errorf("%d wakeups for %d requests 1 ms apart (%v), want at most %d", got, n, time.Since(start).Round(time.Millisecond), slices)
	}
}

// TestBatchSinkHoldsUntilFlush: the sink of a batching source (netlink)
// completes each event and updates the cache at once, and offers the
// events to the consumer, in order, when the source flushes: a lone batch
// at once, a burst's every maxHold or when the source is idle.
func TestBatchSinkHoldsUntilFlush(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := &batchSink{m: m}
	me := os.Getpid()
	s.Event(&process.Event{Kind: process.EventExec, PID: me})
	s.Event(&process.Event{Kind: process.EventComm, PID: me, Comm: "x"})
	if n := len(m.events); n != 0 {
		t.Fatalf("%d events offered before Flush", n)
	}
	if _, ok := m.Cache().Peek(me); !ok {
		t.Fatal("the exec was not cached before Flush")
	}
	s.Flush(false)
	if n := len(m.events); n != 2 {
		t.Fatalf("%d events offered after Flush, want 2", n)
	}
	if ev := <-m.events; ev.Kind != process.EventExec || ev.Process == nil || ev.Process.ID != me {
		t.Fatalf("first event %v %+v", ev.Kind, ev.Process)
	}
	if ev := <-m.events; ev.Kind != process.EventComm {
		t.Fatalf("second event %v", ev.Kind)
	}
	s.Flush(true)
	if n := len(m.events); n != 0 {
		t.Fatalf("a second Flush offered %d events again", n)
	}
	// During a burst (a Flush within maxHold of the last offer) the
	// events wait, until the idle Flush.
	s.Event(&process.Event{Kind: process.EventComm, PID: me, Comm: "y"})
	s.Flush(false)
	if n := len(m.events); n != 0 {
		t.Fatalf("%d events offered within maxHold of the last offer", n)
	}
	s.Flush(true)
	if n := len(m.events); n != 1 {
		t.Fatalf("%d events offered by the idle Flush, want 1", n)
	}
}
