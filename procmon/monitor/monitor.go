// Package monitor starts and stops procmon's default monitor with the names
// of OpenSnitch's daemon/procmon/monitor package (Init, End,
// ReconfigureMonitorMethod, Error), so that a daemon written for OpenSnitch
// switches by changing its import paths. The method is the one
// procmon.SetMonitorMethod set (MethodProc when none was); the default
// monitor falls back down the ladder ebpf, netlink, audit, proc, and
// procmon.GetMonitorMethod tells which method runs. New code uses
// procmon.New and Monitor.Start.
package monitor

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/proctrack/proctrack/procmon"
)

// What an Error reports: the method that could not start. NetlinkErr is
// proctrack's addition (OpenSnitch has no proc connector method).
const (
	NoError = iota
	ProcFsErr
	AuditdErr
	EbpfErr
	EbpfEventsErr
	NetlinkErr
)

// Error says which method could not start (What) and why (Msg). Init and
// ReconfigureMonitorMethod return one with What == NoError when the method
// asked for runs.
type Error struct {
	What int
	Msg  error
}

// Error returns the reason, so that an *Error is an error too.
func (e *Error) Error() string {
	if e.Msg == nil {
		return "no error"
	}
	return e.Msg.Error()
}

// Unwrap returns Msg.
func (e *Error) Unwrap() error { return e.Msg }

var (
	mu             sync.Mutex
	cleanerStarted bool
)

// Init starts the default monitor with the method procmon.SetMonitorMethod
// set (it does nothing to a monitor that runs already) and, once, the socket
// caches' cleaner (procmon.CacheCleanerTask). ebpfModulesPath is ignored:
// proctrack's BPF objects are built into the binary. When the method asked
// for cannot run, the monitor runs the best one below it (OpenSnitch falls
// back to proc) and the Error names the method that failed and why; What is
// ProcFsErr when no method could start.
func Init(ebpfModulesPath string) *Error {
	mu.Lock()
	defer mu.Unlock()
	if !cleanerStarted {
		go procmon.CacheCleanerTask()
		cleanerStarted = true
	}
	want := procmon.GetMonitorMethod()
	if procmon.Default().Method() == "" {
		procmon.SetMonitorMethod(want)
	}
	st := procmon.Default().Status()
	switch {
	case st.Running == want:
		return &Error{}
	case st.Running == "":
		return &Error{What: ProcFsErr, Msg: fmt.Errorf("procmon: no monitoring method could start: %s", reasons(st))}
	}
	return &Error{What: kind(want), Msg: fmt.Errorf("procmon: method %s could not start (%s runs): %s", want, st.Running, reasons(st))}
}

// End stops the default monitor, whichever method it runs (ebpf and audit
// included: their programs and rules are removed). The method set stays
// for the next Init. The process cache keeps its content.
func End() {
	mu.Lock()
	defer mu.Unlock()
	procmon.StopMonitor()
}

// ReconfigureMonitorMethod switches the default monitor to newMonitorMethod.
// Asking for the method that runs does nothing and returns nil. When the new
// method cannot start, the previous one is started again and the Error
// says why; an unknown name is refused (What ProcFsErr, Msg matching
// procmon.ErrUnknownMethod) and the running method kept.
func ReconfigureMonitorMethod(newMonitorMethod, ebpfModulesPath string) *Error {
	old := procmon.GetMonitorMethod()
	if old == newMonitorMethod {
		return nil
	}
	if !slices.Contains(procmon.Methods, newMonitorMethod) {
		return &Error{What: ProcFsErr, Msg: fmt.Errorf("procmon: %w %q (want one of %v)", procmon.ErrUnknownMethod, newMonitorMethod, procmon.Methods)}
	}
	End()
	procmon.SetMonitorMethod(newMonitorMethod)
	errm := Init(ebpfModulesPath)
	if errm.What > NoError {
		End()
		procmon.SetMonitorMethod(old)
		_ = Init(ebpfModulesPath)
		return errm
	}
	return nil
}

// kind returns the Error kind of a method.
func kind(method string) int {
	switch method {
	case procmon.MethodEbpf:
		return EbpfErr
	case procmon.MethodAudit:
		return AuditdErr
	case procmon.MethodNetlink:
		return NetlinkErr
	}
	return ProcFsErr
}

// reasons tells why each skipped method was skipped.
func reasons(st procmon.Status) string {
	var r []string
	for _, m := range st.Methods {
		if m.State == "skipped" {
			r = append(r, m.Method+": "+m.Reason)
		}
	}
	if len(r) == 0 {
		return "no reason given"
	}
	return strings.Join(r, "; ")
}
