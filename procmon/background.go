package procmon

import (
	"context"
	"time"

	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// detailReq asks for the full details of a process once due.
type detailReq struct {
	key process.Key
	due time.Time
}

// scheduleDetails queues a full /proc read of the process after
// DetailDelay. The queue is a slice the detailer polls, so an exec costs no
// goroutine wakeup; when it is full the process keeps its exec-time details.
func (m *Monitor) scheduleDetails(k process.Key) {
	m.detailMu.Lock()
	if len(m.details) < maxDetails {
		m.details = append(m.details, detailReq{key: k, due: time.Now().Add(m.cfg.DetailDelay)})
	}
	m.detailMu.Unlock()
}

// maxDetails bounds the detail queue.
const maxDetails = 1 << 16

// detailer reads, every half DetailDelay, the full details of the processes
// that still run DetailDelay after their exec. Requests are queued in due
// order.
func (m *Monitor) detailer(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.DetailDelay / 2)
	defer t.Stop()
	var due []detailReq
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.detailMu.Lock()
			n := 0
			for n < len(m.details) && !m.details[n].due.After(now) {
				n++
			}
			due = append(due[:0], m.details[:n]...)
			m.details = append(m.details[:0], m.details[n:]...)
			m.detailMu.Unlock()
			for _, r := range due {
				m.readDetails(r.key)
			}
		}
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
		if p := process.FindProcess(pid, false); p != nil && !p.Zombie {
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
