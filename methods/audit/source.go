package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// Defaults of Config.
const (
	// DefaultBacklogLimit is the default Config.BacklogLimit (records).
	DefaultBacklogLimit = 8192
	// DefaultBacklogWaitTime is the backlog wait time set when the
	// kernel's is 0, in jiffies: the kernel's own default, 60 s at HZ=250.
	DefaultBacklogWaitTime = 15000
	// DefaultReassemblyTimeout is the default Config.ReassemblyTimeout.
	DefaultReassemblyTimeout = time.Second
	// DefaultMaxInFlight is the default Config.MaxInFlight (events).
	DefaultMaxInFlight = 256
	// DefaultStatusInterval is the default Config.StatusInterval.
	DefaultStatusInterval = time.Second
	// DefaultReceiveBuffer is the default Config.ReceiveBuffer (bytes).
	DefaultReceiveBuffer = 8 << 20
	// DefaultWakeupGap is the default Config.WakeupGap.
	DefaultWakeupGap = 500 * time.Microsecond
	// DefaultCheckInterval is the default Config.CheckInterval.
	DefaultCheckInterval = 2 * time.Second
)

// Config configures a Source. The zero value is ready to use.
type Config struct {
	// BacklogLimit is the kernel's audit_backlog_limit: how many records
	// may wait for delivery before the kernel makes audited system calls
	// wait (BacklogWaitTime) and then drops records. A value is set as
	// given; 0 means DefaultBacklogLimit (8192), set only when the
	// kernel's limit is lower (and not 0, unlimited). Set in unicast mode
	// only; Close restores the previous value.
	BacklogLimit uint32
	// BacklogWaitTime is the kernel's audit_backlog_wait_time, in kernel
	// jiffies (CONFIG_HZ per second, commonly 250 or 1000): how long a
	// system call that would overflow the backlog waits for room before
	// its record is dropped and counted lost. 0 keeps the kernel's value,
	// or sets DefaultBacklogWaitTime when the kernel's is 0 (drop at
	// once). The kernel refuses values above 10 times its default. Set in
	// unicast mode only; Close restores the previous value.
	BacklogWaitTime uint32
	// Logger receives the source's diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// ReassemblyTimeout is how long records of one event are held waiting
	// for the rest (an end-of-event record). 0 means
	// DefaultReassemblyTimeout.
	ReassemblyTimeout time.Duration
	// MaxInFlight is how many incomplete events the source holds before
	// it delivers the oldest as is. 0 means DefaultMaxInFlight.
	MaxInFlight int
	// StatusInterval is how often the kernel's audit status (its lost
	// counter, backlog) is read. 0 means DefaultStatusInterval.
	StatusInterval time.Duration
	// ReceiveBuffer is the socket receive buffer in bytes. 0 means
	// DefaultReceiveBuffer.
	ReceiveBuffer int
	// Multicast makes the source read-only even when no other process owns
	// the audit socket: it then joins the multicast group and never
	// becomes the audit pid (nor sets the backlog).
	Multicast bool
	// WakeupGap trades latency for CPU in bursts: after it has read
	// records and found no more, the reader sleeps this long before it
	// reads again, so that the records the kernel queues meanwhile wake no
	// thread. 0 means DefaultWakeupGap (500 µs); a negative value has
	// every record wake the reader.
	WakeupGap time.Duration
	// CheckInterval is how often the source checks that the kernel still
	// audits what it set up: audit enabled, its rules in place, and in
	// unicast mode this process the audit pid (one status read and one
	// rule list dump). A CONFIG_CHANGE record (another process changing
	// the audit configuration) brings the next check forward. 0 means
	// DefaultCheckInterval (2 s); a negative value never checks.
	CheckInterval time.Duration
}

// Status is the audit-specific state of a running Source.
type Status struct {
	// Running is set between a successful Start and Close.
	Running bool
	// Multicast is set when the source reads the read-only multicast group
	// because another process owns the audit socket (or Config.Multicast).
	Multicast bool
	// AuditPID is the pid the kernel sends records to: this process in
	// unicast mode, the other daemon in multicast mode (0 if none).
	AuditPID uint32
	// Enabled is the kernel's audit_enabled (0 off, 1 on, 2 locked).
	Enabled uint32
	// KernelLost is the kernel's lost-record counter at the last status
	// read, and LostSinceStart its increase since Start.
	KernelLost     uint32
	LostSinceStart uint64
	// Backlog is the number of records queued in the kernel at the last
	// status read; BacklogLimit and BacklogWaitTime (jiffies) the limits
	// then in force.
	Backlog, BacklogLimit, BacklogWaitTime uint32
	// SequenceGaps counts events found missing: record serial numbers
	// that did not arrive within twice the reassembly timeout (2 s at
	// least).
	SequenceGaps uint64
	// Overflows counts receive buffer overflows (ENOBUFS).
	Overflows uint64
	// Rules is the number of rules the source installed.
	Rules int
	// StatusAt is when the status was last read from the kernel.
	StatusAt time.Time
	// Faults counts the times a check found the kernel no longer auditing
	// what the source set up (its rules deleted, audit disabled, the audit
	// pid taken); LastFault says what the last one was and what was done,
	// LastFaultAt when. See Config.CheckInterval.
	Faults      uint64
	LastFault   string
	LastFaultAt time.Time
}

// Source is the audit method: it reads kernel audit records and delivers
// process events. Create it with New.
type Source struct {
	cfg             Config
	backlogExplicit bool
	log             *slog.Logger

	mu      sync.Mutex // serializes Start and shutdown
	state   int        // stateNew, stateRunning, stateClosed
	stopCtx func() bool

	closeOnce sync.Once
	closeErr  error

	// ctlMu guards ctl, used by Start, Close and the reader's status reads.
	ctlMu sync.Mutex
	ctl   *libaudit.AuditClient
	conn  *nlConn
	// stopping is set before conn is closed: the reader then exits on
	// the error its receive gets. closing is set when Close begins: the
	// reader's checks stop then (Close undoes the setup they check).
	stopping, closing atomic.Bool

	instance  uint64
	owner     string // the owner key of the source's rules
	multicast bool
	before    libaudit.AuditStatus
	changes   changes
	rules     []builtRule

	wg   sync.WaitGroup
	done chan struct{} // closed when the reader returns
	// failed is the fault the source could not repair, which stopped
	// the reader.
	failed atomic.Pointer[error]

	events, lost, lostTimes, errs atomic.Uint64
	gaps, overflows, faults       atomic.Uint64

	statusMu sync.Mutex
	status   Status
}

const (
	stateNew = iota
	stateRunning
	stateClosed
)

// changes records what Start changed on the host, for Close to undo.
type changes struct {
	pid, enabled, backlogLimit, backlogWait bool
	rules                                   [][]byte
}

var _ methods.Source = (*Source)(nil)

// New returns a Source configured by cfg; nothing is opened until Start.
func New(cfg Config) *Source {
	explicit := cfg.BacklogLimit != 0
	if cfg.BacklogLimit == 0 {
		cfg.BacklogLimit = DefaultBacklogLimit
	}
	if cfg.ReassemblyTimeout <= 0 {
		cfg.ReassemblyTimeout = DefaultReassemblyTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	if cfg.ReceiveBuffer <= 0 {
		cfg.ReceiveBuffer = DefaultReceiveBuffer
	}
	if cfg.WakeupGap == 0 {
		cfg.WakeupGap = DefaultWakeupGap
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Source{cfg: cfg, backlogExplicit: explicit, log: log.With("method", process.MethodAudit)}
}

// FlushesSink marks the Source as a methods.Batcher: it calls Flush on a
// sink that implements methods.Flusher once its receive queue is found
// empty: Flush(false) while records keep coming (a sleep of WakeupGap
// follows), Flush(true) before it waits for more, after each batch when
// WakeupGap < 0, and when it stops. The monitor's consumer is then woken
// once per batch, or less often during a burst, rather than once per event.
func (s *Source) FlushesSink() {}

// Name returns process.MethodAudit.
func (s *Source) Name() string { return process.MethodAudit }

// Stats returns the source's counters.
func (s *Source) Stats() methods.Stats {
	return methods.Stats{
		Events:    s.events.Load(),
		Lost:      s.lost.Load(),
		LostTimes: s.lostTimes.Load(),
		Errors:    s.errs.Load(),
		Faults:    s.faults.Load(),
	}
}

// LastFault returns the last fault a check found and what was done about
// it ("" when none); see Status.
func (s *Source) LastFault() string {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return s.status.LastFault
}

// Done returns a channel closed when the reader has stopped: after Close,
// the end of Start's context, or a fault the source could not repair (Err
// says which). nil before Start.
func (s *Source) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Err returns the fault that stopped the source (its rules or audit could
// not be restored, the audit pid was taken), or nil.
func (s *Source) Err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Status returns the audit-specific state: mode, the kernel's counters as
// last read (every Config.StatusInterval), the source's loss counters.
func (s *Source) Status() Status {
	s.statusMu.Lock()
	st := s.status
	s.statusMu.Unlock()
	st.SequenceGaps = s.gaps.Load()
	st.Overflows = s.overflows.Load()
	return st
}

// unavailable wraps err as methods.ErrUnavailable with the reason.
func unavailable(reason string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: audit: %s", methods.ErrUnavailable, reason)
	}
	return fmt.Errorf("%w: audit: %s: %w", methods.ErrUnavailable, reason, err)
}

const (
	needControl = "needs CAP_AUDIT_CONTROL in the initial user and pid namespace"
	needRead    = "needs CAP_AUDIT_READ to read the multicast group"
)

// Start opens the kernel audit interface, installs the rules and delivers
// events to sink from its own goroutine until ctx ends or Close is called.
// When ctx ends the source closes itself (as Close does). Start may be
// called once; an error leaves the host as it was.
func (s *Source) Start(ctx context.Context, sink methods.Sink) (err error) {
	if sink == nil {
		return errors.New("audit: nil sink")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return fmt.Errorf("audit: a Source can be started once: %w", methods.ErrClosed)
	}
	s.state = stateClosed // until it runs
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rerr := s.restore(); rerr != nil {
				s.log.Warn("audit: restoring after a failed start", "err", rerr)
			}
			if s.ctl != nil {
				_ = s.ctl.Close()
				s.ctl = nil
			}
		}
	}()

	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return unavailable("cannot open the audit netlink socket", err)
	}
	s.ctl = ctl
	st, err := ctl.GetStatus()
	if err != nil {
		if errors.Is(err, syscall.EPERM) {
			return unavailable(needControl, err)
		}
		return unavailable("cannot read the audit status", err)
	}
	s.before = *st
	if st.Enabled == 2 {
		return unavailable("audit configuration is locked (enabled=2) until reboot", nil)
	}

	multicast := s.cfg.Multicast
	if !multicast && st.PID != 0 && int(st.PID) != os.Getpid() && alive(int(st.PID)) {
		multicast = true
		s.log.Info("audit: another process owns the audit socket; reading the multicast group", "audit_pid", st.PID)
	}
	if !multicast {
		conn, err := dialAudit(0, s.cfg.ReceiveBuffer)
		if err != nil {
			return unavailable("cannot open the audit netlink socket", err)
		}
		s.conn = conn
		cl := &libaudit.AuditClient{Netlink: conn}
		switch err := cl.SetPID(libaudit.WaitForReply); {
		case err == nil:
			s.changes.pid = true
		case errors.Is(err, syscall.EEXIST):
			// The kernel refuses to replace a live audit daemon (one of
			// this process, or one that registered since GetStatus).
			s.log.Info("audit: the audit socket has a live owner; reading the multicast group")
			_ = conn.Close()
			s.conn = nil
			multicast = true
		case errors.Is(err, syscall.EPERM):
			return unavailable(needControl, err)
		default:
			return fmt.Errorf("audit: become the audit pid: %w", err)
		}
	}
	if multicast {
		conn, err := dialAudit(libaudit.NetlinkGroupReadLog, s.cfg.ReceiveBuffer)
		if err != nil {
			if errors.Is(err, syscall.EPERM) {
				return unavailable(needRead, err)
			}
			return unavailable("cannot join the audit multicast group", err)
		}
		s.conn = conn
	} else {
		// An explicit limit is set as given; the default only raises a
		// lower one (0 is unlimited).
		if limit := s.cfg.BacklogLimit; limit != st.BacklogLimit &&
			(s.backlogExplicit || (st.BacklogLimit != 0 && st.BacklogLimit < limit)) {
			if err := ctl.SetBacklogLimit(s.cfg.BacklogLimit, libaudit.WaitForReply); err != nil {
				return fmt.Errorf("audit: set the backlog limit: %w", err)
			}
			s.changes.backlogLimit = true
		}
		wait := s.cfg.BacklogWaitTime
		if wait == 0 && st.BacklogWaitTime == 0 && st.FeatureBitmap&libaudit.AuditFeatureBitmapBacklogWaitTime != 0 {
			wait = DefaultBacklogWaitTime
		}
		if wait != 0 && wait != st.BacklogWaitTime {
			if err := ctl.SetBacklogWaitTime(int32(wait), libaudit.WaitForReply); err != nil {
				return fmt.Errorf("audit: set the backlog wait time: %w", err)
			}
			s.changes.backlogWait = true
		}
	}

	// Rules: first the leftovers of runs that are over, then ours.
	owner, inst := newOwner()
	s.instance, s.owner = inst, owner
	if err := s.deleteRules(isLeftover); err != nil {
		return err
	}
	rules, err := buildRules(owner)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if err := ctl.AddRule(r.wire); err != nil {
			if errors.Is(err, syscall.EPERM) {
				return unavailable(needControl, err)
			}
			if r.b32 {
				// A kernel without 32-bit compatibility: nothing to audit.
				s.log.Warn("audit: cannot add a 32-bit rule", "rule", r.text, "err", err)
				continue
			}
			return fmt.Errorf("audit: add rule %q: %w", r.text, err)
		}
		s.changes.rules = append(s.changes.rules, r.wire)
		s.rules = append(s.rules, r)
	}
	if st.Enabled == 0 {
		if err := ctl.SetEnabled(true, libaudit.WaitForReply); err != nil {
			return fmt.Errorf("audit: enable: %w", err)
		}
		s.changes.enabled = true
	}

	s.multicast = multicast
	s.statusMu.Lock()
	s.status = Status{Running: true, Multicast: multicast, Rules: len(s.rules), KernelLost: st.Lost}
	s.statusMu.Unlock()
	s.updateStatus(nil, true)

	st2 := s.newStream(sink)
	s.state = stateRunning
	s.done = make(chan struct{})
	s.wg.Add(1)
	go s.run(s.conn, st2)
	s.stopCtx = context.AfterFunc(ctx, func() { _ = s.Close() })
	s.log.Info("audit: started", "multicast", multicast, "rules", len(s.rules))
	return nil
}

// alive reports whether a process with pid exists (and is not a zombie).
func alive(pid int) bool {
	_, err := process.CurrentKey(pid)
	return err == nil
}

// deleteRules deletes the proctrack rules for which match is true. Called
// with ctlMu held or before the reader runs.
func (s *Source) deleteRules(match func(keys []string) bool) error {
	rules, err := s.ctl.GetRules()
	if err != nil {
		if errors.Is(err, syscall.EPERM) {
			return unavailable(needControl, err)
		}
		return fmt.Errorf("audit: list rules: %w", err)
	}
	var errs []error
	n := 0
	for _, w := range rules {
		keys := ruleKeys(w)
		if !isOurs(keys) || !match(keys) {
			continue
		}
		if err := s.ctl.DeleteRule(w); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if n > 0 {
		s.log.Info("audit: deleted leftover rules", "count", n)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit: delete rules: %w", err)
	}
	return nil
}

// Close stops the source: it deletes its rules, gives back the audit pid,
// restores the enabled state and backlog settings found at Start, closes
// the sockets and waits for its goroutine. It may be called more than once
// and concurrently; every call returns the first call's result. It must not
// be called from the sink's methods, which run on that goroutine.
func (s *Source) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Source) shutdown() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		s.state = stateClosed // Close before Start, or after a failed Start
		return nil
	}
	s.state = stateClosed
	s.closing.Store(true)
	if s.stopCtx != nil {
		s.stopCtx()
	}
	s.ctlMu.Lock()
	err := s.restore()
	s.ctlMu.Unlock()
	s.wg.Wait()
	s.ctlMu.Lock()
	if s.ctl != nil {
		err = errors.Join(err, s.ctl.Close())
		s.ctl = nil
	}
	s.ctlMu.Unlock()
	s.statusMu.Lock()
	s.status.Running = false
	s.statusMu.Unlock()
	s.log.Info("audit: closed", "events", s.events.Load(), "lost", s.lost.Load(), "errors", s.errs.Load())
	return err
}

// restore undoes what Start changed, then closes the event socket, which
// stops the reader. The control client stays open.
func (s *Source) restore() error {
	var errs []error
	if ctl := s.ctl; ctl != nil {
		for _, w := range s.changes.rules {
			if err := ctl.DeleteRule(w); err != nil {
				errs = append(errs, fmt.Errorf("delete rule: %w", err))
			}
		}
		s.changes.rules = nil
		if s.changes.enabled {
			if err := ctl.SetEnabled(s.before.Enabled != 0, libaudit.WaitForReply); err != nil {
				errs = append(errs, fmt.Errorf("restore enabled=%d: %w", s.before.Enabled, err))
			}
			s.changes.enabled = false
		}
		if s.changes.pid {
			// Only the owning process may unset the audit pid; libaudit
			// has no call for it.
			if err := setStatus(ctl.Netlink, libaudit.AuditStatus{Mask: libaudit.AuditStatusPID}); err != nil {
				errs = append(errs, fmt.Errorf("give back the audit pid: %w", err))
			}
			s.changes.pid = false
		}
		if s.changes.backlogLimit {
			if err := ctl.SetBacklogLimit(s.before.BacklogLimit, libaudit.WaitForReply); err != nil {
				errs = append(errs, fmt.Errorf("restore backlog limit %d: %w", s.before.BacklogLimit, err))
			}
			s.changes.backlogLimit = false
		}
		if s.changes.backlogWait {
			if err := ctl.SetBacklogWaitTime(int32(s.before.BacklogWaitTime), libaudit.WaitForReply); err != nil {
				errs = append(errs, fmt.Errorf("restore backlog wait time %d: %w", s.before.BacklogWaitTime, err))
			}
			s.changes.backlogWait = false
		}
	}
	if s.conn != nil {
		s.stopping.Store(true)
		if err := s.conn.Close(); err != nil {
			errs = append(errs, err)
		}
		s.conn = nil
	}
	if s.instance != 0 {
		dropOwner(s.instance)
		s.instance = 0
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit: restore: %w", err)
	}
	return nil
}

// run is the reader goroutine: it receives records, groups them into
// events (delivered as they complete), evicts timed-out events and reads
// the kernel's status periodically.
func (s *Source) run(conn *nlConn, st *stream) {
	defer s.wg.Done()
	defer close(s.done)
	tick := min(s.cfg.ReassemblyTimeout/4, 250*time.Millisecond)
	tick = max(tick, 10*time.Millisecond)
	// A serial missing this long is not coming: its event is lost.
	gapAge := max(2*s.cfg.ReassemblyTimeout, 2*time.Second)
	// Deliver what is still held, from this goroutine.
	defer func() {
		st.group.flush()
		st.expireGaps(time.Now(), gapAge)
		st.flush(true)
	}()
	now := time.Now()
	nextMaint, nextStatus := now.Add(tick), now.Add(s.cfg.StatusInterval)
	nextCheck, lastCheck := now.Add(s.cfg.CheckInterval), now
	_ = conn.setReadDeadline(nextMaint)
	var (
		errLogged time.Time
		got       bool // records read since the last time the queue was empty
		slept     bool // the last empty queue was followed by a sleep
	)
	for {
		// After records, drain without blocking, then sleep the gap
		// once; block only when a read after the sleep finds nothing.
		nonBlocking := s.cfg.WakeupGap > 0 && (got || slept)
		msgs, err := conn.recvBatch(nonBlocking)
		if s.stopping.Load() && err != nil && len(msgs) == 0 {
			return
		}
		if errors.Is(err, errTruncated) {
			s.errs.Add(1)
			s.log.Debug("audit: receive", "err", err)
			err = nil
		}
		switch {
		case err == nil:
			now = time.Now()
			for _, b := range msgs {
				if s.handle(st, b, now) && s.cfg.CheckInterval > 0 {
					// The audit configuration changed: check soon
					// (at most every minCheckGap).
					nextCheck = lastCheck.Add(minCheckGap)
				}
			}
			// Read again before sleeping, even after a short batch:
			// kauditd sends an event's records one by one, and the
			// rest of a lone event is usually queued by then (sleeping
			// at once made lone execs 0.5 ms later at the median).
			got = true
			// Without a wakeup gap the next read blocks: each read is a
			// batch. With one, the batch ends when the queue is found
			// empty (EAGAIN below): the sink sees an exec and its exit
			// in one batch more often (and need not read the identity
			// of a process it knows gone).
			if s.cfg.WakeupGap <= 0 {
				st.flush(true)
			}
		case nonBlocking && errors.Is(err, syscall.EAGAIN):
			// The queue is empty: a batch ends. While records keep
			// coming (a sleep follows), the sink may hold its events a
			// while; before a blocking read, it hands them all on.
			st.flush(!got)
			if got {
				conn.sleep(s.cfg.WakeupGap)
			}
			got, slept = false, got
		case errors.Is(err, os.ErrDeadlineExceeded):
		case errors.Is(err, syscall.ENOBUFS):
			// The socket overflowed (multicast: the kernel does not wait
			// for a slow reader); how many records is unknown.
			s.overflows.Add(1)
			st.reportLost(0, "audit: receive buffer overflow (ENOBUFS)")
		default:
			s.errs.Add(1)
			if time.Since(errLogged) > 10*time.Second {
				errLogged = time.Now()
				s.log.Warn("audit: receive", "err", err)
			}
			time.Sleep(10 * time.Millisecond) // no busy loop on a persistent error
		}
		now = time.Now()
		if !now.Before(nextMaint) {
			st.group.cleanUp(now)
			st.expireGaps(now, gapAge)
			st.flush(!got) // events completed by the timeout
			nextMaint = now.Add(tick)
			_ = conn.setReadDeadline(nextMaint)
		}
		if !now.Before(nextStatus) {
			s.updateStatus(st, false)
			nextStatus = now.Add(s.cfg.StatusInterval)
		}
		if s.cfg.CheckInterval > 0 && !now.Before(nextCheck) {
			if err := s.check(st); err != nil {
				s.failed.Store(&err)
				s.log.Error("audit: stopped: the audit setup could not be restored", "err", err)
				return
			}
			lastCheck = time.Now()
			nextCheck = lastCheck.Add(s.cfg.CheckInterval)
		}
	}
}

// grouped are the record types the conversion reads, and the one that
// ends an event (EOE). Others (CONFIG_CHANGE, AVC, SOCKADDR, USER_*...)
// are not grouped: one written outside a system call stands alone, without
// an end-of-event record, and would hold back every later event until the
// reassembly timeout. PROCTITLE, which the kernel writes before the EOE of
// every system call event, is skipped unparsed (2 of the 11 records of a
// storm's exec and exit), and so is a PATH record of another item than the
// first (an exec's interpreter).
func grouped(t auparse.AuditMessageType) bool {
	switch t {
	case auparse.AUDIT_SYSCALL, auparse.AUDIT_EXECVE, auparse.AUDIT_CWD, auparse.AUDIT_PATH,
		auparse.AUDIT_CAPSET, auparse.AUDIT_OBJ_PID, auparse.AUDIT_BPRM_FCAPS, auparse.AUDIT_SECCOMP,
		auparse.AUDIT_EOE:
		return true
	}
	return false
}

// handle groups one datagram, received at now, with the records of its
// event; the events it completes are delivered. A record without a valid
// header, or one of an event delivered incomplete before it came, is
// dropped and counted in Stats.Errors. It reports whether the datagram was
// a CONFIG_CHANGE record (the audit configuration changed).
func (s *Source) handle(st *stream, b []byte, now time.Time) (configChange bool) {
	typ, data := splitMessage(b)
	t := auparse.AuditMessageType(typ)
	switch {
	case typ < uint16(auparse.AUDIT_USER_AUTH), typ > uint16(auparse.AUDIT_LAST_USER_MSG2):
		return false // netlink control messages and answers: records are 1100-2999
	case t == auparse.AUDIT_REPLACE:
		return false // the kernel probing its audit daemon (binary payload)
	case t == auparse.AUDIT_PROCTITLE:
		return false // not read; its event has a SYSCALL record and an EOE
	case t == auparse.AUDIT_PATH && !firstPath(data):
		return false // only the first (an exec's file) is read
	}
	ts, serial, body, err := parseHeader(data)
	if err != nil {
		s.errs.Add(1)
		s.log.Debug("audit: unparsable record", "type", typ, "err", err)
		return t == auparse.AUDIT_CONFIG_CHANGE
	}
	if !grouped(t) {
		st.gaps.seen(serial, now) // its serial is not missing
		return t == auparse.AUDIT_CONFIG_CHANGE
	}
	if st.group.add(t, serial, ts, body, now) {
		s.errs.Add(1)
		s.log.Debug("audit: record of an event delivered without it (timeout or too many in flight)", "type", typ, "serial", serial)
	}
	return false
}

// firstPath reports whether the PATH record data is not known to be of
// another item than 0: the conversion reads only the first (an exec's
// binary), and the others (its interpreter) are left unparsed.
func firstPath(data []byte) bool {
	i := bytes.Index(data, []byte("): "))
	return i < 0 || !bytes.HasPrefix(data[i+3:], []byte("item=")) || bytes.HasPrefix(data[i+3:], []byte("item=0 "))
}

// updateStatus reads the kernel's audit status; an increase of its lost
// counter is reported to the sink (unless initial).
func (s *Source) updateStatus(st *stream, initial bool) {
	s.ctlMu.Lock()
	if s.ctl == nil {
		s.ctlMu.Unlock()
		return
	}
	ks, err := s.ctl.GetStatus()
	s.ctlMu.Unlock()
	if err != nil {
		s.log.Debug("audit: status", "err", err)
		return
	}
	s.statusMu.Lock()
	var delta uint32
	if !initial {
		if prev := s.status.KernelLost; ks.Lost >= prev {
			delta = ks.Lost - prev
		} else {
			delta = ks.Lost // the counter was reset (AUDIT_STATUS_LOST)
		}
		s.status.LostSinceStart += uint64(delta)
	}
	s.status.KernelLost = ks.Lost
	s.status.AuditPID = ks.PID
	s.status.Enabled = ks.Enabled
	s.status.Backlog = ks.Backlog
	s.status.BacklogLimit = ks.BacklogLimit
	s.status.BacklogWaitTime = ks.BacklogWaitTime
	s.status.StatusAt = time.Now()
	s.statusMu.Unlock()
	if delta > 0 && st != nil {
		st.reportLost(uint64(delta), "audit: kernel lost records")
	}
}

// stream delivers the grouper's events, on the reader goroutine.
type stream struct {
	s       *Source
	sink    methods.Sink
	flusher methods.Flusher // the sink, when it holds events until Flush
	group   *grouper
	gaps    gapTracker
	conv    converter
}

// newStream returns the stream of events to sink, with its grouper.
func (s *Source) newStream(sink methods.Sink) *stream {
	st := &stream{s: s, sink: sink}
	st.flusher, _ = sink.(methods.Flusher)
	st.group = newGrouper(s.cfg.MaxInFlight, s.cfg.ReassemblyTimeout, st.complete)
	return st
}

// flush calls the sink's Flush, if it has one.
func (st *stream) flush(idle bool) {
	if st.flusher != nil {
		st.flusher.Flush(idle)
	}
}

// complete converts one event's records, delivered at now, and delivers
// the event. Gaps in the serials are tracked here rather than by the
// grouper, which would count an event whose records all came after a
// later event's as lost (two CPUs finishing system calls at once):
// gapTracker waits for late events.
func (st *stream) complete(serial uint32, ts time.Time, recs []record, now time.Time) {
	st.gaps.seen(serial, now)
	ev, err := st.conv.convert(ts, recs)
	if err != nil {
		st.s.errs.Add(1)
		st.s.log.Debug("audit: malformed event", "err", err)
	}
	if ev != nil {
		st.s.events.Add(1)
		st.sink.Event(ev)
	}
}

// expireGaps reports the serial numbers missing for longer than age.
func (st *stream) expireGaps(now time.Time, age time.Duration) {
	if n := st.gaps.expire(now, age); n > 0 {
		st.s.gaps.Add(n)
		st.reportLost(n, "audit: gap in record serial numbers")
	}
}

func (st *stream) reportLost(n uint64, reason string) {
	st.s.lost.Add(n)
	st.s.lostTimes.Add(1)
	st.sink.Lost(n, reason)
}

// maxPendingGaps bounds the serial numbers gapTracker waits for; beyond
// it missing ones count as lost at once.
const maxPendingGaps = 1 << 16

// gapTracker finds serial numbers that never arrive. An event whose serial
// is above the highest seen so far leaves the ones in between pending; a
// pending serial that arrives late is struck off; one still pending after
// a while is lost.
type gapTracker struct {
	started bool
	max     uint32
	pending map[uint32]time.Time
	now     uint64 // lost at once (pending set full)
}

func (g *gapTracker) seen(seq uint32, now time.Time) {
	if !g.started {
		g.started, g.max = true, seq
		return
	}
	d := int32(seq - g.max) // serials wrap around
	switch {
	case d == 0:
	case d < 0:
		delete(g.pending, seq)
	default:
		if g.pending == nil {
			g.pending = map[uint32]time.Time{}
		}
		missing := uint32(d) - 1
		if int(missing) > maxPendingGaps-len(g.pending) {
			g.now += uint64(missing)
		} else {
			for s := g.max + 1; s != seq; s++ {
				g.pending[s] = now
			}
		}
		g.max = seq
	}
}

// expire returns how many serials are lost: pending for age or more, or
// counted at once since the last call.
func (g *gapTracker) expire(now time.Time, age time.Duration) uint64 {
	n := g.now
	g.now = 0
	for s, t := range g.pending {
		if now.Sub(t) >= age {
			delete(g.pending, s)
			n++
		}
	}
	return n
}
