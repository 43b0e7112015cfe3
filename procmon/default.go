package procmon

import (
	"context"
	"log/slog"
	"sync"
)

// The seed-compatible package functions share one default Monitor, created
// on first use and feeding EventsCache.
var (
	defaultMu  sync.Mutex
	defaultMon *Monitor
	// defaultMethod is the preferred method of the default monitor; it
	// outlives StopMonitor, as OpenSnitch's configured method does.
	defaultMethod string
)

// Default returns the default Monitor (not started until SetMonitorMethod or
// MonitorProcEvents starts it). It feeds EventsCache.
func Default() *Monitor {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	return defaultLocked()
}

func defaultLocked() *Monitor {
	if defaultMon == nil {
		defaultMon, _ = New(Config{Cache: EventsCache.EventsStore, Method: defaultMethod}) // defaultMethod is valid
	}
	return defaultMon
}

// SetMonitorMethod selects the preferred method of the default monitor and
// (re)starts monitoring with it, falling back down the ladder (ebpf, netlink,
// audit, proc) when it cannot run. Processes already cached are kept. An
// unknown method name is logged and ignored. GetMonitorMethod tells which
// method runs; Default().Status() tells why the others were skipped.
func SetMonitorMethod(newMonitorMethod string) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	m := defaultLocked()
	if err := m.SetMethod(newMonitorMethod); err != nil {
		slog.Warn("procmon: SetMonitorMethod", "method", newMonitorMethod, "err", err)
		return
	}
	defaultMethod = newMonitorMethod
	m.mu.Lock()
	started := m.ctx != nil
	m.mu.Unlock()
	if !started {
		if err := m.Start(context.Background()); err != nil {
			slog.Warn("procmon: SetMonitorMethod", "method", newMonitorMethod, "err", err)
		}
	}
}

// GetMonitorMethod returns the method the default monitor runs, or, when it
// does not run, the method it would try first: MethodProc when none was
// set, as in OpenSnitch (without a monitor, processes are read from /proc).
func GetMonitorMethod() string {
	m := Default()
	if running := m.Method(); running != "" {
		return running
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.preferred == "" {
		return MethodProc
	}
	return m.preferred
}

// MethodIsEbpf reports whether the default monitor runs the eBPF method.
func MethodIsEbpf() bool { return GetMonitorMethod() == MethodEbpf }

// MethodIsNetlink reports whether the default monitor runs the proc connector.
func MethodIsNetlink() bool { return GetMonitorMethod() == MethodNetlink }

// MethodIsAudit reports whether the default monitor runs the audit method.
func MethodIsAudit() bool { return GetMonitorMethod() == MethodAudit }

// MethodIsProc reports whether the default monitor runs the proc method.
func MethodIsProc() bool { return GetMonitorMethod() == MethodProc }

// MonitorProcEvents runs the default monitor until stop is closed, then
// stops it (the seed's netlink listener loop). If the default monitor runs
// already it only waits for stop, and stops it then.
func MonitorProcEvents(stop <-chan struct{}) {
	m := Default()
	m.mu.Lock()
	started := m.ctx != nil
	m.mu.Unlock()
	if !started {
		if err := m.Start(context.Background()); err != nil {
			slog.Warn("procmon: MonitorProcEvents", "err", err)
			return
		}
	}
	<-stop
	StopMonitor()
}

// StopMonitor stops the default monitor; the next SetMonitorMethod or
// MonitorProcEvents starts a new one, preferring the method last set.
// EventsCache keeps its content.
func StopMonitor() {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultMon != nil {
		_ = defaultMon.Close()
		defaultMon = nil
	}
}
