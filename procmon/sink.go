package procmon

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/proctrack/proctrack/internal/procfs"
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

// sink is the methods.Sink the monitor hands to the sources it starts. It
// is not part of the Monitor's API, so that only a source the monitor
// started can report events.
type sink struct{ m *Monitor }

// Event hands a source's event to the monitor.
func (s sink) Event(ev *process.Event) { s.m.handle(ev) }

// Lost hands a source's loss report to the monitor.
func (s sink) Lost(n uint64, reason string) { s.m.lostEvents(n, reason) }

// maxHeld bounds the events a batchSink holds back; maxHold how long it
// holds finished events during a burst.
const (
	maxHeld = 256
	maxHold = 5 * time.Millisecond
)

// batchSink is the sink of a source that reads events in batches
// (methods.Batcher: netlink, ebpf, audit). It completes each event and
// updates the cache as it comes, as sink does, with four differences that
// save the work a storm of short-lived processes makes (the second and
// third only for a source that reports only pids, netlink; the last only
// for one that reports execs without a start time, audit):
//   - the events are offered to the consumer at Flush, after the source's
//     batch, and during a burst at most every maxHold (5 ms): a consumer
//     that keeps up is woken once per batch or less instead of once per
//     event (a wakeup of a parked goroutine costs a futex wake and an idle
//     thread's spinning, more than completing the event); a lone event is
//     offered at once;
//   - a fork is held until an event needs its child (its exec, exit, any
//     event of it or a fork of its own) or the Flush after the next batch
//     (an idle Flush, if sooner): when the child's exec comes by then, the
//     reads that name the exec (Reader.Image) also tell the child's
//     identity, and the fork costs no read of its own;
//   - an exec whose fork was seen takes its credentials from the fork and,
//     at Flush, after the batch's naming reads, checks them with one
//     capget(2): exec changes the ids only with a uid or gid event of its
//     own (handled before), and the capability sets as capget shows them
//     (execKept); only when they differ (set-user-ID binaries, file
//     capabilities, root's sets) are they read from /proc/<pid>/status. A
//     process gone by then keeps those of its fork;
//   - an exec that carries its image but not the start time is held until
//     an event of its pid or of a child of it, or until the events are
//     offered: when that event is its exit, the process is gone from /proc
//     and its identity is not read (Monitor.execIdentity; a storm's
//     short-lived process mostly exits before its exec is handled, and the
//     read failed). It is offered no later than without holding.
//
// Used by the source's one goroutine.
type batchSink struct {
	m       *Monitor
	held    []*process.Event
	done    int                    // held[:done] came before the last Flush
	creds   []*process.Event       // held execs whose credentials are read at Flush
	forks   map[int]*process.Event // held forks not completed yet, by child pid
	waiting []*process.Event       // forks of the last batch held into the next
	execs   map[int]*process.Event // held execs without a start time not completed yet, by pid
	offered time.Time              // the last offer to the consumer
}

// Event completes the event (or holds a fork) and holds it until Flush.
func (s *batchSink) Event(ev *process.Event) {
	m := s.m
	if len(s.execs) > 0 {
		s.execBefore(ev)
	}
	if len(s.forks) > 0 {
		if f := s.forks[ev.PID]; f != nil {
			delete(s.forks, ev.PID)
			if ev.Kind == process.EventExec && ev.Process == nil && ev.Verdict != process.VerdictDenied {
				s.forkExec(f, ev)
				return
			}
			m.complete(f)
		}
		if f := s.forks[ev.PPID]; f != nil && ev.Kind == process.EventFork {
			delete(s.forks, ev.PPID) // its parent's fork: the parent first
			m.complete(f)
		}
	}
	if ev.Kind == process.EventExec && ev.Process != nil && ev.Process.Starttime == 0 && ev.Verdict != process.VerdictDenied {
		if s.execs == nil {
			s.execs = make(map[int]*process.Event)
		}
		s.execs[ev.PID] = ev
		s.hold(ev, false)
		return
	}
	if ev.Kind == process.EventFork && ev.Process == nil && ev.Verdict != process.VerdictDenied {
		if s.forks == nil {
			s.forks = make(map[int]*process.Event)
		}
		s.forks[ev.PID] = ev
		s.hold(ev, false)
		return
	}
	offer, later := m.complete(ev)
	if offer {
		s.hold(ev, later)
	}
}

// forkExec completes a held fork and its child's exec: one Reader.Image
// names the exec and tells the child's identity, if the process it read is
// the forked child (forkedBy; no exit of the pid came between, so it can
// have named another process since the fork only if the child exited after
// its exec, a later event). Else the fork reads its own identity, as
// without holding, and the exec is reported incomplete: the image read is
// another process's.
func (s *batchSink) forkExec(fork, exec *process.Event) {
	m := s.m
	// Unpinned: forkedBy checks the identity, read last (see
	// process.Reader.ImageOfKnown).
	img, err := m.reader.ImageOfKnown(exec.PID)
	m.begin(fork)
	if img != nil && forkedBy(fork, img) {
		m.forkWith(fork, img.Starttime, img.StartedAt)
	} else {
		m.onFork(fork)
		if img != nil {
			// Another process: the child has exited and its pid names a
			// process born since. Its image is not the exec's.
			img, err = nil, fmt.Errorf("process %d: parent %d, not %d, started at tick %d: %w", exec.PID, img.PPID, fork.PPID, img.Starttime, process.ErrGone)
		}
	}
	m.finish(fork)
	m.begin(exec)
	later := m.execWith(exec, img, err)
	if m.finish(exec) {
		s.hold(exec, later)
	}
}

// execBefore completes the held execs that ev must follow: its process's
// (which ev, its exit, tells gone) and its parent's.
func (s *batchSink) execBefore(ev *process.Event) {
	if x := s.execs[ev.PID]; x != nil {
		delete(s.execs, ev.PID)
		var gone error
		if ev.Kind == process.EventExit {
			gone = process.ErrGone
		}
		s.completeExec(x, gone)
	}
	ppid := ev.PPID
	if ppid == 0 && ev.Process != nil {
		ppid = ev.Process.PPID
	}
	if x := s.execs[ppid]; x != nil && ppid != ev.PID {
		delete(s.execs, ppid)
		s.completeExec(x, nil)
	}
}

// completeExec completes a held exec without a start time; gone is
// process.ErrGone when its exit was handled (see Monitor.execWith).
func (s *batchSink) completeExec(ev *process.Event, gone error) {
	s.m.begin(ev)
	s.m.execWith(ev, nil, gone)
	s.m.finish(ev)
}

// hold keeps ev until Flush, and notes that its credentials are to be read
// then; it flushes when maxHeld are held.
func (s *batchSink) hold(ev *process.Event, creds bool) {
	s.held = append(s.held, ev)
	if creds {
		s.creds = append(s.creds, ev)
	}
	if len(s.held) >= maxHeld {
		s.Flush(true)
	}
}

// Lost hands a source's loss report to the monitor.
func (s *batchSink) Lost(n uint64, reason string) { s.m.lostEvents(n, reason) }

// Flush finishes the batch: it completes the held forks and checks the
// held execs' credentials (execCreds). It then offers the events held, in
// order, completing first the held execs without a start time among them:
// when idle, when maxHeld are held, or when the last offer is maxHold old;
// else they wait for a later Flush (during a burst the consumer is woken
// at most every maxHold, and a lone event is offered at once). A fork of
// this batch whose child's exec has not come yet stays held until the next
// Flush (unless idle or maxHeld are held), and the events from it on are
// offered then: the exec of a child forked at the end of a batch mostly
// comes in the next one, and then names the child for the fork too.
func (s *batchSink) Flush(idle bool) {
	if len(s.held) == 0 {
		return
	}
	m := s.m
	all := idle || len(s.held) >= maxHeld
	for _, f := range s.waiting {
		s.completeFork(f) // their child's exec did not come in this batch either
	}
	clear(s.waiting)
	s.waiting = s.waiting[:0]
	ready := len(s.held) // held[:ready] are finished
	for i, ev := range s.held[s.done:] {
		if s.forks[ev.PID] != ev {
			continue
		}
		if all {
			s.completeFork(ev)
			continue
		}
		s.waiting = append(s.waiting, ev)
		ready = min(ready, s.done+i)
	}
	now := time.Now()
	offer := ready > 0 && (all || now.Sub(s.offered) >= maxHold)
	if offer && len(s.execs) > 0 {
		// The held execs whose exit did not come before the offer.
		for _, ev := range s.held[:ready] {
			if x := s.execs[ev.PID]; x == ev {
				delete(s.execs, ev.PID)
				s.completeExec(ev, nil)
			}
		}
	}
	for _, ev := range s.creds {
		m.execCreds(ev)
	}
	clear(s.creds)
	s.creds = s.creds[:0]
	s.done = len(s.held)
	if !offer {
		return
	}
	s.offered = now
	m.offer(s.held[:ready]...)
	n := copy(s.held, s.held[ready:])
	clear(s.held[n:])
	s.held, s.done = s.held[:n], n
}

// completeFork completes f, a held fork, unless an event of its child
// completed it already.
func (s *batchSink) completeFork(f *process.Event) {
	if s.forks[f.PID] == f {
		delete(s.forks, f.PID)
		s.m.complete(f)
	}
}

// handle receives one event from the running method. It runs on the
// method's goroutine: it completes the event from the cache and /proc,
// updates the cache, and offers the event to the consumer without waiting.
// Event.Process is then the cache's version of the process of that moment,
// which later events do not change.
func (m *Monitor) handle(ev *process.Event) {
	offer, later := m.complete(ev)
	if later {
		m.execCreds(ev)
	}
	if offer {
		m.offer(ev)
	}
}

// complete is handle up to the offer: it reports whether the event is for
// the consumer, and whether it is an exec whose credentials are its fork's
// and are to be read (execCreds).
func (m *Monitor) complete(ev *process.Event) (offer, credsLater bool) {
	m.begin(ev)
	switch {
	case ev.Verdict == process.VerdictDenied:
		// The sandbox refused it: nothing changed.
		m.attach(ev)
	case ev.Kind == process.EventFork:
		m.onFork(ev)
	case ev.Kind == process.EventExec:
		credsLater = m.onExec(ev)
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
	return m.finish(ev), credsLater
}

// begin counts a received event and gives it a time if it has none.
func (m *Monitor) begin(ev *process.Event) {
	m.received.Add(1)
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
}

// finish evaluates the rules on a completed event and reports whether it
// is for the consumer.
func (m *Monitor) finish(ev *process.Event) bool {
	if ev.CacheOnly {
		return false // the kernel's rules did not report it: the cache has it
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
	return true
}

// offer puts the events on the Events channel, each unless it is full (the
// event is dropped and counted) or closed (the monitor has ended: nothing
// is sent).
func (m *Monitor) offer(evs ...*process.Event) {
	m.sendMu.RLock()
	defer m.sendMu.RUnlock()
	if m.ended {
		return
	}
	for _, ev := range evs {
		select {
		case m.events <- *ev:
			m.delivered.Add(1)
		default:
			m.dropped.Add(1)
		}
	}
}

// lostEvents records a loss the method reported and has the cache repaired
// from /proc (by the reconciler goroutine, so the method's reader goes on).
func (m *Monitor) lostEvents(n uint64, reason string) {
	m.lost.Add(n)
	m.lossReports.Add(1)
	m.lossMu.Lock()
	if m.losses == nil {
		m.losses = map[string]Loss{}
	}
	l := m.losses[reason]
	l.Reports++
	l.Events += n
	m.losses[reason] = l
	m.lossMu.Unlock()
	m.log.Debug("procmon: events lost", "n", n, "reason", reason)
	select {
	case m.reconcileC <- struct{}{}:
	default: // one is pending already
	}
}

// onFork caches the child: a copy of its parent's image under its own
// identity. A child gone before its identity could be read, or whose pid
// /proc shows with another parent than the fork's, is reported with its
// parent's image and Incomplete set, and not cached: its start time is
// never another process's.
func (m *Monitor) onFork(ev *process.Event) {
	if ev.Process != nil && ev.Process.Starttime != 0 {
		ev.Process = m.cache.Put(ev.Process)
		return
	}
	parent, havePar := m.cache.Peek(ev.PPID)
	child, err := m.reader.Identity(ev.PID)
	if err == nil && ev.PPID != 0 && !forkedBy(ev, child) {
		// Another process's identity: the child has exited and its pid
		// names a process born since.
		err = process.ErrGone
	}
	if err != nil {
		child = &process.Process{ID: ev.PID, PPID: ev.PPID, Incomplete: true}
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

// forkedBy reports whether p, read from /proc at the pid of the fork ev,
// is the child that fork made: its parent is the fork's, or (its parent
// exited and it was reparented before the read) it started in the clock
// tick of the fork's time, or the next (the kernel stamps the fork event
// after the child's start; a start time is rounded down to its tick). The
// pid names another process only after the child's exit and a wrap of
// the pid space, which no real storm does within a tick.
func forkedBy(ev *process.Event, p *process.Process) bool {
	if p.PPID == ev.PPID {
		return true
	}
	t := ticksSinceBoot(ev.Time)
	return p.Starttime >= t-1 && p.Starttime <= t
}

// ticksSinceBoot returns t in clock ticks since boot, the unit of a start
// time (stat field 22), counted from the boot instant the start times
// were converted with (procfs.Boot).
func ticksSinceBoot(t time.Time) int64 {
	return int64(t.Sub(procfs.Boot()) / (time.Second / procfs.UserHZ))
}

// forkWith caches the child of a fork whose identity its exec's reads gave
// (batchSink.forkExec): its parent's image under that identity (without
// the parent cached, no image: the child's exec gives it one).
func (m *Monitor) forkWith(ev *process.Event, start int64, startedAt time.Time) {
	child := &process.Process{ID: ev.PID, PPID: ev.PPID, Starttime: start, StartedAt: startedAt}
	if parent, ok := m.cache.Peek(ev.PPID); ok {
		inherit(child, parent.Proc)
	}
	ev.Process = m.cache.Put(child)
}

// inherit copies a parent's image into a forked child: fork copies the
// image, credentials and namespaces.
func inherit(child, parent *process.Process) {
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
// after DetailDelay if the process still runs. It reports whether the
// process has its fork's credentials, to be read (execCreds).
func (m *Monitor) onExec(ev *process.Event) bool {
	if ev.Process != nil {
		return m.execWith(ev, nil, nil)
	}
	read := m.reader.Image
	if item, ok := m.cache.Peek(ev.PID); ok && item.Exited == 0 && item.Proc.Starttime != 0 {
		// The cached live process exec'd: execImage takes the image only
		// with its identity, so it is read unpinned
		// (process.Reader.ImageOfKnown).
		read = m.reader.ImageOfKnown
	}
	img, err := read(ev.PID)
	return m.execWith(ev, img, err)
}

// execWith is onExec with what Reader.Image read of the process, for an
// event that carries none (img nil: the stat read failed with err). For an
// event that carries its image without a start time (audit), err is
// process.ErrGone when the process is known gone (its exit was handled:
// its identity is not read), else nil.
func (m *Monitor) execWith(ev *process.Event, img *process.Process, err error) (credsLater bool) {
	p := ev.Process
	gone := false
	if p == nil {
		p, credsLater = m.execImage(ev, img, err)
		if p == nil {
			return false
		}
	} else if p.Starttime == 0 {
		if !m.execIdentity(ev, p, err) {
			// A method that carries the image but not the start time
			// (audit), and the pid taken by a process younger than the
			// exec: reported as the method gave it, not cached.
			ev.Process = p
			return false
		}
		gone = p.Starttime == 0
	}
	if ev.Bprm == nil && m.bprm && p.Path != "" {
		// What the eBPF LSM tier's bprm_check carries, from the file.
		ev.Bprm = process.BprmFromFile(p.Path, p.RealPath, p.Fileless || p.ExeDeleted)
	}
	if gone {
		// Its start time was not to be had: cached without one, never
		// the one a younger process of the pid has now.
		ev.Process = m.cache.PutGone(p)
	} else {
		ev.Process = m.cache.Put(p)
	}
	if !p.Incomplete && p.Starttime != 0 {
		m.scheduleDetails(ev.Process.Key())
	}
	return credsLater
}

// execImage gives the process Reader.Image read (img, or nil and the
// error) of an exec whose method carried only the pid its credentials: the
// cached process's, when it is the one read (its fork was seen; exec
// changes them only for some binaries and capability sets: read later, see
// execCreds), else from /proc now. A process gone before its identity
// could be read, or whose pid names another process than the cached live
// one by then, is reported with what the cache knew of the pid, marked
// incomplete, never a made-up path or another process's image; it returns
// nil then.
func (m *Monitor) execImage(ev *process.Event, img *process.Process, err error) (p *process.Process, credsLater bool) {
	item, cached := m.cache.Peek(ev.PID)
	cached = cached && item.Exited == 0 && item.Proc.Starttime != 0
	if img != nil && cached && item.Proc.Key() != img.Key() {
		// The cached process exec'd: its exit has not come, and a pid
		// names one process at a time (its exit comes before the fork of
		// the next process of the pid). The pid names a younger process
		// now, whose image is not the exec's.
		img, err = nil, fmt.Errorf("process %d: %v, not %v: %w", ev.PID, img.Key(), item.Proc.Key(), process.ErrGone)
	}
	if img == nil {
		m.incomplete.Add(1)
		p = &process.Process{ID: ev.PID, Incomplete: true}
		if cached && errors.Is(err, process.ErrGone) {
			p.Starttime, p.StartedAt, p.PPID = item.Proc.Starttime, item.Proc.StartedAt, item.Proc.PPID
			m.cache.Exit(p.Key())
		}
		ev.Process = p
		return nil, false
	}
	if img.Incomplete {
		m.incomplete.Add(1)
	}
	if cached {
		img.Creds, img.UID = item.Proc.Creds, item.Proc.UID
		return img, !img.Incomplete
	}
	if c, err := m.reader.Creds(img.ID); err == nil {
		img.Creds, img.UID = c, int(c.EUID)
	}
	return img, false
}

// execCreds reads the credentials of an exec'd process that execImage gave
// its fork's, and makes them its event's (a new version of the cached
// process), unless the exec provably kept them (execKept). A process gone
// by then, or whose pid names another process (another parent), keeps its
// fork's.
func (m *Monitor) execCreds(ev *process.Event) {
	p := ev.Process
	if item, ok := m.cache.Get(p.Key()); !ok || item.Exited != 0 {
		return // its exit came in the batch: nothing to read
	}
	if m.execKept(p) {
		return
	}
	m.execCredReads.Add(1)
	c, err := m.reader.CredsOfChild(p.ID, p.PPID)
	if err != nil {
		return
	}
	c.UserNS = p.Creds.UserNS // status does not tell it
	if sameCreds(c, p.Creds) {
		return
	}
	m.change(ev, p.Key(), func(q *process.Process) {
		q.Creds, q.UID = c, int(c.EUID)
	})
}

// execKept reports whether the exec of p kept the credentials p has (its
// fork's, and what the uid and gid events before the exec changed), from
// one capget(2) instead of a read of /proc/<pid>/status. Of what
// Credentials holds, an exec changes only (security/commoncap.c
// cap_bprm_creds_from_file, fs/exec.c bprm_fill_uid):
//   - the user and group ids (set-user-ID and set-group-ID binaries; the
//     saved and filesystem ids become the effective ones): the kernel
//     sends a uid or gid event for every change of any of the four
//     (commit_creds), before the exec event, and the monitor handled it
//     before this (onCreds reads them);
//   - the permitted and effective sets (root, file capabilities, the
//     ambient set): capget tells them as they are now;
//   - the ambient set, only to clear it (set-ID binaries, file
//     capabilities): nothing when it was empty.
//
// Exec never changes the inheritable and bounding sets, the groups,
// no_new_privs, the seccomp mode or the user namespace. So the credentials
// are kept when p's ambient set is empty and capget gives p's inheritable,
// permitted and effective sets. p's bounding set must not be empty: its
// credentials were read then (a status read, or the eBPF method's), not
// the zero value of a process whose parent was not cached (a process that
// dropped its whole bounding set has them read at each exec). A pid that
// names another process by now (the exit not handled yet) is at worst
// taken as unchanged: its event keeps its fork's credentials, as a process
// gone before the read does.
//
// What a process changes between its fork and its exec without an event
// of the proc connector and without changing its capability sets
// (prctl's no_new_privs, a seccomp filter, a bounding set dropped by a
// process without capabilities) its exec event does not show, where the
// status read showed it: the detail pass reads it DetailDelay later, if
// the process still runs.
func (m *Monitor) execKept(p *process.Process) bool {
	c := &p.Creds
	if c.CapAmbient != 0 || c.CapBounding == 0 {
		return false
	}
	inh, prm, eff, err := m.reader.Caps(p.ID)
	return err == nil && inh == c.CapInheritable && prm == c.CapPermitted && eff == c.CapEffective
}

// startSlack is how many clock ticks (10 ms each) after an exec's time a
// process's start may read and it still be the process that exec'd: start
// ticks are rounded down, and audit stamps a record with the coarse clock
// (one kernel tick, up to 10 ms) at the system call's entry.
const startSlack = 3

// execIdentity gives p, the image of an exec reported without a start time
// (audit), the identity of the process that exec'd, and reports whether p
// may be cached. A pid names one process at a time, so that is:
//   - the process /proc shows with the pid, if it started before the exec.
//     The cached live process of the pid, if another, is dead (audit
//     reports no exit by a signal): it is marked exited, never given the
//     new image;
//   - else (the process is gone, or the pid was taken since by a process
//     born after the exec) the cached live process of the pid, if it
//     started before the exec and its parent is the record's: the exec
//     came before its exit (a short-lived child whose exec is handled
//     late);
//   - else none: a process gone from /proc is cached without a start time
//     (later events of the pid find it), but not when a younger process
//     has the pid now (its identity would be taken).
//
// With gone (process.ErrGone: the process's exit was handled already)
// /proc is not read: the process is gone from it.
func (m *Monitor) execIdentity(ev *process.Event, p *process.Process, gone error) bool {
	execTicks := ticksSinceBoot(ev.Time)
	var (
		cached    process.Key
		ppid      int
		startedAt time.Time
	)
	if item, ok := m.cache.Peek(p.ID); ok && item.Exited == 0 {
		cached, ppid, startedAt = item.Proc.Key(), item.Proc.PPID, item.Proc.StartedAt
	}
	now, err := (*process.Process)(nil), gone
	if gone == nil {
		now, err = m.reader.Identity(p.ID)
	}
	if err == nil && now.Starttime <= execTicks+startSlack {
		if cached.StartTicks != 0 && cached != now.Key() {
			m.cache.Exit(cached)
		}
		p.Starttime, p.StartedAt = now.Starttime, now.StartedAt
		return true
	}
	if cached.StartTicks == 0 {
		return err != nil
	}
	if errors.Is(err, process.ErrGone) {
		m.cache.Exit(cached) // gone from /proc, its exit not handled yet
	}
	if int64(cached.StartTicks) <= execTicks+startSlack && (p.PPID == 0 || p.PPID == ppid) {
		p.Starttime, p.StartedAt = int64(cached.StartTicks), startedAt
		return true
	}
	return err != nil
}

// sameCreds reports whether a and b are equal.
func sameCreds(a, b process.Credentials) bool {
	type scalars struct {
		ids     [8]uint32
		caps    [5]process.CapSet
		nnp     bool
		seccomp int
		userNS  uint64
	}
	f := func(c *process.Credentials) scalars {
		return scalars{
			[8]uint32{c.UID, c.EUID, c.SUID, c.FSUID, c.GID, c.EGID, c.SGID, c.FSGID},
			[5]process.CapSet{c.CapInheritable, c.CapPermitted, c.CapEffective, c.CapBounding, c.CapAmbient},
			c.NoNewPrivs, c.Seccomp, c.UserNS,
		}
	}
	return f(&a) == f(&b) && slices.Equal(a.Groups, b.Groups)
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
	cur, k := p.Creds, p.Key()
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
			ev.Process = &process.Process{ID: ev.PID, Incomplete: true}
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
		old = item.Proc.Creds
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
		ok = m.change(ev, item.Proc.Key(), func(p *process.Process) {
			p.Creds = change.New
			p.UID = int(change.New.EUID)
		})
	}
	if !ok {
		m.attach(ev)
	}
}

// change gives the cached process k a new version changed by fn (see
// cache.EventsStore.Change) and makes it the event's process. It reports
// false when k is no longer cached.
func (m *Monitor) change(ev *process.Event, k process.Key, fn func(p *process.Process)) bool {
	p, ok := m.cache.Change(k, fn)
	if ok {
		ev.Process = p
	}
	return ok
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
	ev.Process = item.Proc
	if ev.Comm != "" {
		m.change(ev, item.Proc.Key(), func(p *process.Process) { p.Comm = ev.Comm })
	}
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
