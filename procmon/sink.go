package procmon

import (
	"errors"
	"time"

	"github.com/proctrack/proctrack/procmon/process"
)

// Event is one thing that happened to a process; see process.Event.
type Event = process.Event

// EventKind says what happened; see process.EventKind.
type EventKind = process.EventKind

// CredChange is the before and after of a credential change.
type CredChange = process.CredChange

// Verdict is a sandbox's decision (Event.Verdict); see process.Verdict.
type Verdict = process.Verdict

// Verdicts.
const (
	VerdictNone    = process.VerdictNone
	VerdictAllowed = process.VerdictAllowed
	VerdictDenied  = process.VerdictDenied
	// VerdictKilled: sched_process_exec's sandbox killed the exec'd
	// process (SIGKILL) before its new image ran.
	VerdictKilled = process.VerdictKilled
)

// Bprm is what bprm_check saw of an executed binary; see process.Bprm.
type Bprm = process.Bprm

// Prctl is the option and arguments of a prctl call; see process.Prctl.
type Prctl = process.Prctl

// SetIDFlags are the LSM_SETID_* flags of a credential change; see
// process.SetIDFlags.
type SetIDFlags = process.SetIDFlags

// Event kinds.
const (
	EventFork     = process.EventFork
	EventExec     = process.EventExec
	EventExit     = process.EventExit
	EventUID      = process.EventUID
	EventGID      = process.EventGID
	EventSID      = process.EventSID
	EventPtrace   = process.EventPtrace
	EventComm     = process.EventComm
	EventCoredump = process.EventCoredump
	EventCapset   = process.EventCapset
	EventPrctl    = process.EventPrctl
	EventUserNS   = process.EventUserNS
	EventSeccomp  = process.EventSeccomp
)

// Event receives one event from the running method (methods.Sink). It runs
// on the method's goroutine: it completes the event from the cache and
// /proc, updates the cache, and offers the event to the consumer without
// waiting.
func (m *Monitor) Event(ev *process.Event) {
	m.received.Add(1)
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	switch {
	case ev.Verdict == process.VerdictDenied:
		// The sandbox refused it: nothing changed.
		m.attach(ev)
	case ev.Kind == process.EventFork:
		m.onFork(ev)
	case ev.Kind == process.EventExec:
		m.onExec(ev)
	case ev.Kind == process.EventExit:
		m.onExit(ev)
	case ev.Kind == process.EventUID, ev.Kind == process.EventGID, ev.Kind == process.EventCapset:
		m.onCreds(ev)
	case ev.Kind == process.EventComm:
		m.onComm(ev)
	case ev.Kind == process.EventUserNS:
		m.onUserNS(ev)
	default:
		m.attach(ev)
	}
	if ev.CacheOnly {
		return // the kernel's rules did not report it: the cache has it
	}
	// The kernel's answer (eBPF LSM tier) stands; elsewhere the rules are
	// evaluated here, on receipt.
	if m.cfg.Rules != nil && !ev.MatchedInKernel {
		if _, matched := m.cfg.Rules.MatchEvent(ev); len(matched) > 0 {
			for _, r := range matched {
				ev.Matched = append(ev.Matched, r.Name())
			}
		}
	}
	select {
	case m.events <- *ev:
		m.delivered.Add(1)
	default:
		m.dropped.Add(1)
	}
}

// Lost records a loss the method reported and has the cache repaired from
// /proc (by the reconciler goroutine, so the method's reader goes on).
func (m *Monitor) Lost(n uint64, reason string) {
	m.lost.Add(n)
	m.lossReports.Add(1)
	m.log.Debug("procmon: events lost", "n", n, "reason", reason)
	select {
	case m.reconcileC <- struct{}{}:
	default: // one is pending already
	}
}

// onFork caches the child: a copy of its parent's image under its own
// identity. A child gone before its identity could be read is reported with
// its parent's image and Incomplete set, and not cached.
func (m *Monitor) onFork(ev *process.Event) {
	if ev.Process != nil && ev.Process.Starttime != 0 {
		ev.Process = m.cache.Put(ev.Process)
		return
	}
	parent, havePar := m.cache.Peek(ev.PPID)
	child, err := m.reader.Identity(ev.PID)
	if err != nil {
		child = process.NewProcessWithParent(ev.PID, ev.PPID, "")
		child.Incomplete = true
		if havePar {
			inherit(child, parent.Proc)
		}
		ev.Process = child
		return
	}
	if havePar {
		inherit(child, parent.Proc)
	} else if full, err := m.reader.Exec(ev.PID); err == nil {
		child = full
	}
	ev.Process = m.cache.Put(child)
}

// inherit copies a parent's image into a forked child: fork copies the
// image, credentials and namespaces.
func inherit(child, parent *process.Process) {
	parent.RLock()
	defer parent.RUnlock()
	child.Path, child.RealPath, child.Args, child.Env, child.CWD = parent.Path, parent.RealPath, parent.Args, parent.Env, parent.CWD
	child.Creds, child.UID, child.NS, child.Root = parent.Creds, parent.UID, parent.NS, parent.Root
	child.Cgroup, child.ContainerID, child.ContainerRuntime = parent.Cgroup, parent.ContainerID, parent.ContainerRuntime
	child.ExeDev, child.ExeInode, child.ExeDeleted, child.Fileless = parent.ExeDev, parent.ExeInode, parent.ExeDeleted, parent.Fileless
	child.Checksums = parent.Checksums
	if child.Comm == "" {
		child.Comm = parent.Comm
	}
}

// onExec reads the new image from /proc at once (unless the method carried
// it) and applies it to the cached process; the rest of the details follow
// after DetailDelay if the process still runs.
func (m *Monitor) onExec(ev *process.Event) {
	p := ev.Process
	if p == nil {
		var err error
		if item, ok := m.cache.Peek(ev.PID); ok && item.Exited == 0 && item.Proc.Starttime != 0 {
			// The fork was seen: the identity is known, no stat read.
			p, err = m.reader.ExecOf(item.Proc.Key(), item.Proc.StartedAt)
		} else {
			p, err = m.reader.Exec(ev.PID)
		}
		if p == nil {
			// Gone before even its identity could be read: report what
			// the cache knew of the pid, marked incomplete, never a
			// made-up path.
			m.incomplete.Add(1)
			p = process.NewProcessEmpty(ev.PID, "")
			p.Incomplete = true
			if item, ok := m.cache.Peek(ev.PID); ok && errors.Is(err, process.ErrGone) {
				item.Proc.RLock()
				p.Starttime, p.StartedAt, p.PPID = item.Proc.Starttime, item.Proc.StartedAt, item.Proc.PPID
				item.Proc.RUnlock()
				m.cache.Exit(p.Key())
			}
			ev.Process = p
			return
		}
		if p.Incomplete {
			m.incomplete.Add(1)
		}
	} else if p.Starttime == 0 {
		// A method that carries the image but not the start time (audit):
		// the cached live process of the pid is the one that exec'd (its
		// exit comes after this event), even when it is already gone from
		// /proc; /proc only for a process the cache has not seen.
		if item, ok := m.cache.Peek(p.ID); ok && item.Exited == 0 && item.Proc.Starttime != 0 {
			item.Proc.RLock()
			p.Starttime, p.StartedAt = item.Proc.Starttime, item.Proc.StartedAt
			item.Proc.RUnlock()
		} else if id, err := m.reader.Identity(p.ID); err == nil {
			p.Starttime, p.StartedAt = id.Starttime, id.StartedAt
		}
	}
	if ev.Bprm == nil && m.bprm && p.Path != "" {
		// What the eBPF LSM tier's bprm_check carries, from the file.
		ev.Bprm = process.BprmFromFile(p.Path, p.RealPath, p.Fileless || p.ExeDeleted)
	}
	ev.Process = m.cache.Put(p)
	if !p.Incomplete && p.Starttime != 0 {
		m.scheduleDetails(ev.Process.Key())
	}
}

// onUserNS completes a user namespace event whose method did not see the
// creator's credentials before the namespace existed (every method but the
// eBPF LSM tier): Creds.Old is the cached process's credentials, or those
// a detail refresh replaced when it found the process already in the new
// namespace (the event came late); Creds.New, unless the method gave it,
// the cached ones.
func (m *Monitor) onUserNS(ev *process.Event) {
	m.attach(ev)
	if ev.Creds != nil && ev.Creds.Old.UserNS != 0 {
		return
	}
	p := ev.Process
	p.RLock()
	cur, k := p.Creds, p.Key()
	p.RUnlock()
	old := cur
	if v, ok := m.nsBefore.LoadAndDelete(k); ok {
		old = v.(process.Credentials)
	}
	if ev.Creds == nil {
		ev.Creds = &process.CredChange{New: cur}
	}
	ev.Creds.Old = old
}

// onExit marks the process exited in the cache.
func (m *Monitor) onExit(ev *process.Event) {
	if ev.Process != nil && ev.Process.Starttime != 0 {
		m.nsBefore.Delete(ev.Process.Key())
		m.cache.Exit(ev.Process.Key())
		if item, ok := m.cache.Get(ev.Process.Key()); ok {
			ev.Process = item.Proc
		}
		return
	}
	item, ok := m.cache.Peek(ev.PID)
	if !ok {
		if ev.Process == nil {
			ev.Process = process.NewProcessEmpty(ev.PID, "")
			ev.Process.Incomplete = true
		}
		return
	}
	m.nsBefore.Delete(item.Proc.Key())
	m.cache.Exit(item.Proc.Key())
	ev.Process = item.Proc
}

// onCreds completes a credential change: Old from the cache; New as the
// eBPF method took it in the kernel right after the call, or, for methods
// that report only some ids (netlink: uid and euid), /proc/<pid>/status
// with the reported ids over it (the ids are exact; the rest is the state
// when the event is handled).
func (m *Monitor) onCreds(ev *process.Event) {
	item, ok := m.cache.Peek(ev.PID)
	var old process.Credentials
	if ok {
		item.Proc.RLock()
		old = item.Proc.Creds
		item.Proc.RUnlock()
	}
	change := &process.CredChange{Old: old, New: old}
	if ev.Creds != nil && ev.Method == process.MethodEbpf {
		change.New = ev.Creds.New
	} else {
		if now, err := m.reader.Creds(ev.PID); err == nil {
			change.New = now
		}
		if ev.Creds != nil {
			mergeCreds(&change.New, &ev.Creds.New, ev.Kind)
		}
	}
	ev.Creds = change
	if ok {
		item.Proc.Lock()
		item.Proc.Creds = change.New
		item.Proc.UID = int(change.New.EUID)
		item.Proc.Unlock()
		ev.Process = item.Proc
	} else {
		m.attach(ev)
	}
}

// mergeCreds copies into dst the ids a method reports for an event kind.
func mergeCreds(dst, src *process.Credentials, kind process.EventKind) {
	switch kind {
	case process.EventUID:
		dst.UID, dst.EUID = src.UID, src.EUID
		if src.SUID != 0 || src.FSUID != 0 {
			dst.SUID, dst.FSUID = src.SUID, src.FSUID
		}
	case process.EventGID:
		dst.GID, dst.EGID = src.GID, src.EGID
		if src.SGID != 0 || src.FSGID != 0 {
			dst.SGID, dst.FSGID = src.SGID, src.FSGID
		}
	case process.EventCapset:
		dst.CapInheritable, dst.CapPermitted, dst.CapEffective = src.CapInheritable, src.CapPermitted, src.CapEffective
		if src.CapAmbient != 0 {
			dst.CapAmbient = src.CapAmbient
		}
	}
}

// onComm records the new name.
func (m *Monitor) onComm(ev *process.Event) {
	item, ok := m.cache.Peek(ev.PID)
	if !ok {
		m.attach(ev)
		return
	}
	if ev.Comm != "" {
		item.Proc.Lock()
		item.Proc.Comm = ev.Comm
		item.Proc.Unlock()
	}
	ev.Process = item.Proc
}

// attach sets the event's process: the cached one (complete, while what a
// method carries for a privilege event may be partial: an audit record has
// ids but no capability sets), else what the method carried, else /proc.
func (m *Monitor) attach(ev *process.Event) {
	if item, ok := m.cache.Peek(ev.PID); ok {
		ev.Process = item.Proc
		return
	}
	if ev.Process != nil {
		return
	}
	if p, err := m.reader.Exec(ev.PID); err == nil {
		ev.Process = m.cache.Put(p)
		return
	}
	ev.Process = process.NewProcessEmpty(ev.PID, "")
	ev.Process.Incomplete = true
}
