package procmon

import (
	"context"
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
