package procmon

import (
	"time"

	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// detailReq asks for the full details of a process once due.
type detailReq struct {
	key process.Key
	due time.Time
}

// scheduleDetails queues a full /proc read of the process after DetailDelay;
// when the queue is full the process keeps its exec-time details.
func (m *Monitor) scheduleDetails(k process.Key) {
	select {
	case m.detailC <- detailReq{key: k, due: time.Now().Add(m.cfg.DetailDelay)}:
	default:
	}
}

// detailer reads the full details of processes that still run DetailDelay
// after their exec. Requests come in due order.
func (m *Monitor) detailer() {
	defer m.wg.Done()
	ctx := m.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-m.detailC:
			if d := time.Until(r.due); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			item, ok := m.cache.Get(r.key)
			if !ok || item.Exited != 0 {
				continue // exited meanwhile: nothing to read, no system call spent
			}
			p := process.NewProcessEmpty(r.key.PID, "")
			p.Starttime = int64(r.key.StartTicks)
			if p.GetDetails() == nil {
				m.cache.Put(p)
			}
		}
	}
}

// reconciler repairs the cache from /proc after a loss.
func (m *Monitor) reconciler() {
	defer m.wg.Done()
	ctx := m.ctx
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
}

// newSource returns the Source of a method.
func (m *Monitor) newSource(name string) (methods.Source, error) {
	f, ok := sources[name]
	if !ok {
		return nil, ErrUnknownMethod
	}
	return f(m.cfg)
}
