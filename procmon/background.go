package procmon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// detailReq asks for the full details of a process once due.
type detailReq struct {
	key process.Key
	due time.Time
}

// detailQueue holds the processes whose details are due later, in due
// order (every request is due DetailDelay after it is queued).
type detailQueue struct {
	mu   sync.Mutex
	reqs []detailReq
	// idle is set while the detailer sleeps with nothing queued: only the
	// request that finds it set wakes the detailer, through wake.
	idle bool
	wake chan struct{} // capacity 1; made on first use
	// wakeups counts the detailer's wakeups (tests check it sleeps).
	wakeups atomic.Uint64
}

// wakeC returns the wake channel. The caller holds mu.
func (q *detailQueue) wakeC() chan struct{} {
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
	return q.wake
}

// scheduleDetails queues a full /proc read of the process after
// DetailDelay. Only the first request after the queue ran empty wakes the
// detailer, so a burst of execs costs one goroutine wakeup, and then one
// per due time; when the queue is full the process keeps its exec-time
// details.
func (m *Monitor) scheduleDetails(k process.Key) {
	q := &m.details
	q.mu.Lock()
	if len(q.reqs) < maxDetails {
		q.reqs = append(q.reqs, detailReq{key: k, due: time.Now().Add(m.cfg.DetailDelay)})
	}
	wake := q.idle
	q.idle = false
	c := q.wakeC()
	q.mu.Unlock()
	if wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// maxDetails bounds the detail queue.
const maxDetails = 1 << 16

// detailSlices: while requests are queued the detailer wakes at most every
// DetailDelay/detailSlices, serving all that are due; a request is served
// up to that much after its due time.
const detailSlices = 4

// detailer reads the full details of the processes that still run
// DetailDelay after their exec. It sleeps until the first request is due
// (at least DetailDelay/detailSlices), or, with nothing queued, until a
// request comes.
func (m *Monitor) detailer(ctx context.Context) {
	defer m.wg.Done()
	q := &m.details
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var due []detailReq
	for {
		q.mu.Lock()
		now := time.Now()
		n := 0
		for n < len(q.reqs) && !q.reqs[n].due.After(now) {
			n++
		}
		due = append(due[:0], q.reqs[:n]...)
		q.reqs = append(q.reqs[:0], q.reqs[n:]...)
		var timerC <-chan time.Time
		if len(q.reqs) > 0 {
			// Requests come as often as execs: serving each due time
			// apart would wake this goroutine (and a thread) for nearly
			// every one of them during a storm.
			timer.Reset(max(q.reqs[0].due.Sub(now), m.cfg.DetailDelay/detailSlices))
			timerC = timer.C
		} else {
			q.idle = true
		}
		wake := q.wakeC()
		q.mu.Unlock()
		for _, r := range due {
			m.readDetails(r.key)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
			timer.Stop()
		case <-timerC:
		}
		q.wakeups.Add(1)
	}
}

// readDetails reads a process's full details into the cache, if it runs.
func (m *Monitor) readDetails(k process.Key) {
	item, ok := m.cache.Get(k)
	if !ok || item.Exited != 0 {
		return // exited meanwhile: nothing to read, no system call spent
	}
	before := item.Proc.Creds
	p := process.NewProcessEmpty(k.PID, "")
	p.Starttime = int64(k.StartTicks)
	// A zombie has exited: it has no image left to read, and its details
	// must not replace the image it ran.
	if p.GetDetails() == nil && !p.Zombie {
		if before.UserNS != 0 && p.Creds.UserNS != 0 && p.Creds.UserNS != before.UserNS {
			m.nsBefore.Store(k, before)
		}
		m.cache.Put(p)
	}
}

// reconciler repairs the cache from /proc after a loss.
func (m *Monitor) reconciler(ctx context.Context) {
	defer m.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.reconcileC:
			m.reconcile()
		}
	}
}

// reconcile reads every process in /proc into the cache (those not cached
// already) and marks exited the cached processes /proc no longer has.
func (m *Monitor) reconcile() {
	m.reconciliations.Add(1)
	since := time.Now()
	pids, err := process.PIDs()
	if err != nil {
		m.log.Warn("procmon: reconcile: list /proc", "err", err)
		return
	}
	live := make(map[process.Key]bool, len(pids))
	for _, pid := range pids {
		if item, ok := m.cache.Peek(pid); ok && item.Exited == 0 {
			// Cached: confirm the identity with one stat read.
			if k, err := process.CurrentKey(pid); err == nil && k == item.Proc.Key() {
				live[k] = true
				continue
			}
		}
		if p := process.ReadProcess(pid); p != nil && !p.Zombie {
			live[p.Key()] = true
			m.cache.AddNew(p)
		}
	}
	m.cache.ExitMissing(live, since)
	m.nsBefore.Range(func(k, _ any) bool {
		if !live[k.(process.Key)] {
			m.nsBefore.Delete(k)
		}
		return true
	})
}

// newSource returns the Source of a method.
func (m *Monitor) newSource(name string) (methods.Source, error) {
	f, ok := sources[name]
	if !ok {
		return nil, ErrUnknownMethod
	}
	return f(m.cfg)
}
