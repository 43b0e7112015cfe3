package netlink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	nl "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/internal/pollstop"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// DefaultRcvBuf is the socket receive buffer Config.RcvBuf defaults to:
// 32 MiB, room for tens of thousands of unread events.
const DefaultRcvBuf = 32 << 20

// AckTimeout is how long Start waits for the kernel's acknowledgement of the
// subscription. The kernel answers from within the send itself, or never
// (outside the initial user and pid namespaces).
const AckTimeout = 2 * time.Second

// Loss reasons passed to Sink.Lost.
const (
	// ReasonOverflow is the reason given when a receive failed with
	// ENOBUFS: the kernel dropped messages because the socket receive
	// buffer was full. n is the number of messages the per-CPU sequences
	// show missing once every CPU was made to send a message after it, at
	// least 1.
	ReasonOverflow = "ENOBUFS: socket receive buffer overflowed"
	// ReasonSeqGap is the reason given when a CPU's message sequence
	// skipped numbers; n is the number of messages skipped.
	ReasonSeqGap = "sequence gap"
)

// Config configures a Source.
type Config struct {
	// RcvBuf is the socket receive buffer in bytes (DefaultRcvBuf when
	// 0). It is set with SO_RCVBUFFORCE, which needs CAP_NET_ADMIN, and
	// otherwise with SO_RCVBUF, which the kernel caps at
	// net.core.rmem_max (a warning is logged then).
	RcvBuf int
	// Logger receives the source's log records (slog.Default() when
	// nil).
	Logger *slog.Logger
	// WakeupGap trades latency for CPU in bursts. After a read that found
	// messages the reader sleeps this long before it reads again, off the
	// socket's wait queue, so that the messages the kernel queues
	// meanwhile wake no thread; once a read finds nothing it waits for
	// the socket again. A lone event reaches the sink at once, an event
	// of a burst up to WakeupGap late. 0 means DefaultWakeupGap (500 µs); a
	// negative value has every message wake the reader.
	WakeupGap time.Duration
}

// DefaultWakeupGap is the default Config.WakeupGap.
const DefaultWakeupGap = 500 * time.Microsecond

// Counters are a Source's detailed counters; Stats sums them up as a
// methods.Stats.
type Counters struct {
	Events      uint64 // events delivered to the sink
	Messages    uint64 // well-formed proc connector messages read, acks included
	ThreadForks uint64 // thread creations skipped (child pid != child tgid)
	ThreadExits uint64 // exits of threads other than the thread-group leader, skipped
	Acks        uint64 // PROC_EVENT_NONE acknowledgements read (ours and other listeners')
	Overflows   uint64 // receives that failed with ENOBUFS after Start (reported as Lost(n, ReasonOverflow), one report for those of one drain)
	Probes      uint64 // times every CPU was made to send a message after an overflow, to count the loss
	SeqGaps     uint64 // messages missing from the per-CPU sequences (reported with an overflow, or as Lost(n, ReasonSeqGap))
	GapReports  uint64 // number of sequence gaps seen
	SeqResets   uint64 // per-CPU sequences that went backwards and were restarted (not a loss)
	Errors      uint64 // malformed, truncated or forged messages skipped
	Forged      uint64 // datagrams not sent by the kernel (also counted in Errors)
	Batches     uint64 // receive calls (recvmmsg) that returned messages; Messages/Batches is the batching
}

// Source is the proc connector method: it subscribes to the kernel's process
// events over a NETLINK_CONNECTOR socket and hands them to a methods.Sink.
// A Source runs once: Start it, then Close it. Its methods are safe for
// concurrent use.
type Source struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	state   int               // stateNew, stateRunning, stateClosed
	conn    *nl.Conn          // until the reader takes the socket over (detach)
	fd      int               // then: the socket
	stop    *pollstop.Stopper // and what stops the reader
	done    chan struct{}     // closed when the reader goroutine returns
	stopCtx func() bool       // unregisters the context.AfterFunc
	rcvBuf  atomic.Int64

	shutOnce sync.Once
	shutErr  error
	stopping atomic.Bool
	readErr  atomic.Pointer[error]

	rd *reader // owned by the goroutine that reads

	events, messages, threadForks, threadExits, acks atomic.Uint64
	overflows, seqGaps, gapReports, seqResets        atomic.Uint64
	errs, forged, lost, lostTimes, batches, probes   atomic.Uint64
}

const (
	stateNew = iota
	stateRunning
	stateClosed
)

var (
	_ methods.Source  = (*Source)(nil)
	_ methods.Batcher = (*Source)(nil)
)

// New returns a Source configured by cfg; nothing is opened until Start.
func New(cfg Config) *Source {
	if cfg.RcvBuf <= 0 {
		cfg.RcvBuf = DefaultRcvBuf
	}
	if cfg.WakeupGap == 0 {
		cfg.WakeupGap = DefaultWakeupGap
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Source{cfg: cfg, log: log.With("method", process.MethodNetlink)}
}

// FlushesSink marks the Source as a methods.Batcher: after each batch of
// messages it reads (one recvmmsg call, up to 64) it calls Flush(false) on
// a sink that implements methods.Flusher, and Flush(true) once a read after
// its wakeup gap found nothing (the burst is over) or when it stops.
func (s *Source) FlushesSink() {}

// Name returns process.MethodNetlink.
func (s *Source) Name() string { return process.MethodNetlink }

// Start opens a NETLINK_CONNECTOR socket in the caller's network namespace,
// joins the proc connector's multicast group, subscribes with
// PROC_CN_MCAST_LISTEN and waits for the kernel's acknowledgement. It then
// delivers events to sink, synchronously from one reader goroutine, until
// ctx ends or Close is called. Events that happened before Start returns
// are not delivered.
//
// The error matches methods.ErrUnavailable, and says why, when the proc
// connector cannot be used here: the kernel lacks it, the process is
// outside the initial user, pid or network namespace, or the kernel refuses
// the subscription (EPERM without CAP_NET_ADMIN, where the kernel asks for it).
// A Source starts once: Start after a successful Start or after Close
// returns an error (not ErrUnavailable); a Start that failed may be retried.
func (s *Source) Start(ctx context.Context, sink methods.Sink) error {
	if sink == nil {
		return errors.New("netlink: Start with a nil sink")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateRunning:
		return fmt.Errorf("netlink: source already started: %w", methods.ErrClosed)
	case stateClosed:
		return fmt.Errorf("netlink: source closed (a Source starts once): %w", methods.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	if err := nsCheck(); err != nil {
		return err
	}

	// A zero Config (NetNS 0): the socket is created in the caller's
	// network namespace with socket(2); mdlayher/netlink opens no
	// namespace file of any process for it.
	conn, err := nl.Dial(protoConnector, &nl.Config{})
	if err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) {
			return fmt.Errorf("netlink: the kernel has no netlink connector (CONFIG_CONNECTOR): %w: %w", err, methods.ErrUnavailable)
		}
		return fmt.Errorf("netlink: open a NETLINK_CONNECTOR socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = conn.Close()
		}
	}()
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	s.setRcvBuf(rc)
	if err := conn.JoinGroup(cnIdxProc); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("netlink: the proc connector needs CAP_NET_ADMIN in the initial user namespace (join group %d): %w: %w",
				cnIdxProc, unix.EPERM, methods.ErrUnavailable)
		}
		return fmt.Errorf("netlink: join the proc connector's group: %w", err)
	}

	s.conn = conn
	s.stopping.Store(false)
	s.shutOnce = sync.Once{}
	s.shutErr = nil
	s.rd = newReader(s, sink, rand.Uint32()&0x7fffffff|1)

	if err := s.sendOp(mcastListen, s.rd.listenAck); err != nil {
		switch {
		case errors.Is(err, unix.EPERM):
			return fmt.Errorf("netlink: the proc connector needs CAP_NET_ADMIN in the initial user namespace: %w: %w", unix.EPERM, methods.ErrUnavailable)
		case errors.Is(err, unix.ECONNREFUSED):
			// The connector's kernel socket exists in the initial
			// network namespace only.
			return fmt.Errorf("netlink: the proc connector exists only in the initial network namespace: %w: %w", unix.ECONNREFUSED, methods.ErrUnavailable)
		}
		return fmt.Errorf("netlink: send PROC_CN_MCAST_LISTEN: %w", err)
	}
	if err := s.waitAck(ctx, conn, rc); err != nil {
		// Undo the subscription in case the kernel counted it (its
		// acknowledgement may have been lost, or the context ended
		// after it). Where the LISTEN was refused or ignored, the
		// IGNORE is too.
		_ = s.sendOp(mcastIgnore, 0)
		return err
	}

	s.primeSequences(rc)
	if err := s.detach(rc); err != nil {
		_ = s.sendOp(mcastIgnore, 0)
		return err
	}

	done := make(chan struct{})
	s.done = done
	s.state = stateRunning
	s.stopCtx = context.AfterFunc(ctx, func() { _ = s.shutdown() })
	ok = true
	s.log.Debug("netlink: listening to the proc connector", "rcvbuf", s.rcvBuf.Load())
	go s.run(done)
	return nil
}

// detach takes the socket out of the Go runtime's network poller for the
// reader goroutine: it duplicates the descriptor and closes the
// connection, which removes the original from the runtime's epoll set. A
// socket in that set wakes a runtime thread for every message that
// arrives, even while nobody reads; out of it, messages queued while the
// reader sleeps (Config.WakeupGap) wake no one.
func (s *Source) detach(rc syscall.RawConn) error {
	var (
		fd   int
		derr error
	)
	if err := rc.Control(func(raw uintptr) { fd, derr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return fmt.Errorf("netlink: duplicate the socket: %w", errors.Join(err, derr))
	}
	stop, err := pollstop.New()
	if err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("netlink: %w", err)
	}
	if err := s.conn.Close(); err != nil {
		_ = unix.Close(fd)
		_ = stop.Close()
		return fmt.Errorf("netlink: hand the socket to the reader: %w", err)
	}
	s.conn, s.fd, s.stop = nil, fd, stop
	return nil
}

// waitAck reads until the kernel's acknowledgement of our
// PROC_CN_MCAST_LISTEN arrives, and turns its absence or its error into an
// error.
func (s *Source) waitAck(ctx context.Context, conn *nl.Conn, rc syscall.RawConn) error {
	deadline := time.Now().Add(AckTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	// Cancelling ctx interrupts the wait.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })

	r := s.rd
	r.handshake = true
	err := rc.Read(r.readFn)
	r.handshake = false
	if err == nil {
		err = r.err
	}
	if !stop() || ctx.Err() != nil {
		// The context ended: its deadline may be set at any time now.
		return fmt.Errorf("netlink: waiting for the proc connector: %w", context.Cause(ctx))
	}
	if !r.acked {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("netlink: %s: %w", noAckReason(), methods.ErrUnavailable)
		}
		return fmt.Errorf("netlink: waiting for the proc connector's acknowledgement: %w", err)
	}
	if r.ackErr != 0 {
		errno := syscall.Errno(r.ackErr)
		if errno == unix.EPERM {
			return fmt.Errorf("netlink: the proc connector needs CAP_NET_ADMIN in the initial user namespace: %w: %w", errno, methods.ErrUnavailable)
		}
		return fmt.Errorf("netlink: the proc connector refused PROC_CN_MCAST_LISTEN: %w: %w", errno, methods.ErrUnavailable)
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	return nil
}

// primeSequences makes the kernel send a message from every CPU the process
// may run on, so that each CPU's sequence has a baseline before Start
// returns: without one, messages lost before the first one received from a
// CPU would not show as a gap. From a thread pinned to each CPU in turn it
// sends PROC_CN_MCAST_IGNORE then PROC_CN_MCAST_LISTEN, which the kernel
// acknowledges from that CPU; the pair leaves the kernel's listener count
// as it was, both on kernels that count per socket (6.6 and later) and on
// older ones that count every request. Best effort: a CPU that cannot be
// primed gets its baseline from its first message.
func (s *Source) primeSequences(rc syscall.RawConn) {
	r := s.rd
	cpus, primed := s.onEachCPU(func(cpu int) bool {
		if cpu < len(r.seqs) && r.seqs[cpu].seen {
			return true
		}
		r.listenAck = rand.Uint32()&0x7fffffff | 1
		r.acked = false
		if s.sendOp(mcastIgnore, 0) != nil || s.sendOp(mcastListen, r.listenAck) != nil {
			return false
		}
		// The acknowledgement is queued by the send itself.
		_ = s.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		r.handshake = true
		_ = rc.Read(r.readFn)
		r.handshake = false
		return r.acked
	})
	_ = s.conn.SetReadDeadline(time.Time{})
	s.log.Debug("netlink: per-CPU sequences primed", "cpus", cpus, "primed", primed)
}

// onEachCPU calls fn on a thread pinned to each CPU the process may run on,
// in turn, and waits for it; it returns the number of CPUs and how many fn
// returned true for. The thread's affinity is restored afterwards (if that
// fails, the thread stays locked and ends with its goroutine rather than
// run other goroutines pinned).
func (s *Source) onEachCPU(fn func(cpu int) bool) (cpus, ok int) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		var all unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			runtime.UnlockOSThread()
			return
		}
		cpus = all.Count()
		for cpu, left := 0, cpus; cpu < maxCPU && left > 0; cpu++ {
			if !all.IsSet(cpu) {
				continue
			}
			left--
			var one unix.CPUSet
			one.Set(cpu)
			if unix.SchedSetaffinity(0, &one) != nil {
				continue
			}
			if fn(cpu) {
				ok++
			}
		}
		if err := unix.SchedSetaffinity(0, &all); err != nil {
			s.log.Warn("netlink: cannot restore the thread's CPU affinity", "err", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
	return cpus, ok
}

// noAckReason explains a missing acknowledgement.
func noAckReason() string {
	b, err := os.ReadFile("/proc/net/connector")
	if err == nil && !strings.Contains(string(b), "cn_proc") {
		return "the kernel has no proc connector (CONFIG_PROC_EVENTS): no acknowledgement of PROC_CN_MCAST_LISTEN"
	}
	return fmt.Sprintf("no acknowledgement of PROC_CN_MCAST_LISTEN within %v: the proc connector ignores listeners outside the initial user and pid namespaces", AckTimeout)
}

// nsCheck is checkNamespaces; tests replace it to reach the kernel's own
// behaviour.
var nsCheck = checkNamespaces

// checkNamespaces returns an error matching methods.ErrUnavailable when the
// process is provably outside the initial user or pid namespace, where the
// kernel silently ignores the subscription. It reads only /proc/self.
func checkNamespaces() error {
	for _, ns := range []string{kernel.UserNS, kernel.PidNS} {
		// Unknown is not outside: the acknowledgement will tell.
		if ino, outside := kernel.OutsideInitialNS(ns); outside {
			return fmt.Errorf("netlink: the proc connector reports only to listeners in the initial user and pid namespaces; this process is in %s namespace %d: %w",
				ns, ino, methods.ErrUnavailable)
		}
	}
	return nil
}

// setRcvBuf sets the receive buffer, forcing it past net.core.rmem_max when
// allowed, and records the size the kernel granted.
func (s *Source) setRcvBuf(rc syscall.RawConn) {
	var (
		forced     bool
		got        int
		ferr, serr error
	)
	cerr := rc.Control(func(fd uintptr) {
		ferr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, s.cfg.RcvBuf)
		if ferr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, s.cfg.RcvBuf)
		} else {
			forced = true
		}
		got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if cerr == nil {
		cerr = serr
	}
	s.rcvBuf.Store(int64(got))
	switch {
	case cerr != nil:
		s.log.Warn("netlink: cannot set the socket receive buffer", "want", s.cfg.RcvBuf, "have", got, "err", cerr)
	case !forced && got < s.cfg.RcvBuf:
		s.log.Warn("netlink: socket receive buffer capped by net.core.rmem_max (SO_RCVBUFFORCE needs CAP_NET_ADMIN)",
			"want", s.cfg.RcvBuf, "have", got, "force_err", ferr)
	}
}

// sendOp sends a proc_cn_mcast_op to the proc connector with the given
// cn_msg ack number.
func (s *Source) sendOp(op, ack uint32) error {
	b := make([]byte, cnMsgLen+4)
	le := binary.NativeEndian
	le.PutUint32(b[0:], cnIdxProc)
	le.PutUint32(b[4:], cnValProc)
	le.PutUint32(b[12:], ack) // seq (b[8:12]) and flags stay 0
	le.PutUint16(b[16:], 4)   // len: the op
	le.PutUint32(b[20:], op)
	if s.conn != nil {
		_, err := s.conn.Send(nl.Message{Header: nl.Header{Type: nlmsgDone}, Data: b})
		return err
	}
	// Detached: the netlink header by hand (the kernel fills in the
	// sender's port id).
	msg := make([]byte, unix.NLMSG_HDRLEN+len(b))
	le.PutUint32(msg[0:], uint32(len(msg)))
	le.PutUint16(msg[4:], nlmsgDone)
	copy(msg[unix.NLMSG_HDRLEN:], b)
	return unix.Sendto(s.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// run is the reader goroutine. It drains the socket, and sleeps
// Config.WakeupGap after a drain that found messages (see WakeupGap);
// after one that found none it waits in poll(2) for the socket or for
// shutdown's eventfd. It owns the descriptors and closes them when it
// returns.
func (s *Source) run(done chan struct{}) {
	defer close(done)
	defer func() {
		_ = unix.Close(s.fd)
		_ = s.stop.Close()
	}()
	r := s.rd
	defer r.flush(true)
	for {
		before := s.messages.Load()
		r.read(uintptr(s.fd))
		if r.err != nil && !s.stopping.Load() {
			s.fail(fmt.Errorf("netlink: receive: %w", r.err))
			return
		}
		// The reader returns only once shutdown has signalled the
		// Stopper (stopping is set first): the descriptors it then
		// closes are no longer used.
		var (
			stopped bool
			err     error
		)
		if s.cfg.WakeupGap > 0 && s.messages.Load() != before && !s.stopping.Load() {
			// Sleep off the socket's wait queue; shutdown cuts it short.
			stopped = s.stop.Sleep(s.cfg.WakeupGap)
		} else {
			// Nothing more came: what the sink holds goes now.
			r.flush(true)
			// An error-only readiness (POLLERR: the kernel flagged
			// ENOBUFS on an empty queue) returns at once; the next
			// read consumes it.
			stopped, err = s.stop.Wait(s.fd, unix.POLLIN, -1)
		}
		if stopped {
			return
		}
		if err != nil {
			s.fail(fmt.Errorf("netlink: %w", err))
			return
		}
	}
}

// fail records the error that stops the reader (the socket failed under
// it), says so, and shuts the source down.
func (s *Source) fail(err error) {
	s.readErr.Store(&err)
	s.log.Error("netlink: reader stopped", "err", err)
	_ = s.shutdown()
}

// shutdown unsubscribes (PROC_CN_MCAST_IGNORE: the kernel counts listeners
// and a socket closed without it would keep the count up, and the kernel
// generating events) and stops the reader goroutine, once: the reader
// closes the socket when it returns, so the send comes first.
func (s *Source) shutdown() error {
	s.shutOnce.Do(func() {
		var errs []error
		if err := s.sendOp(mcastIgnore, 0); err != nil {
			errs = append(errs, fmt.Errorf("netlink: send PROC_CN_MCAST_IGNORE: %w", err))
		}
		s.stopping.Store(true)
		if err := s.stop.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("netlink: wake the reader: %w", err))
		}
		s.shutErr = errors.Join(errs...)
	})
	return s.shutErr
}

// Close unsubscribes, closes the socket and waits for the reader goroutine:
// no event is delivered once Close returns. Close before Start, or a second
// Close, does nothing and returns nil; Start after Close returns an error.
func (s *Source) Close() error {
	s.mu.Lock()
	state, done := s.state, s.done
	s.state = stateClosed
	s.mu.Unlock()
	if state != stateRunning {
		if done != nil {
			<-done // a concurrent Close may still be waiting
		}
		return nil
	}
	s.stopCtx()
	err := s.shutdown()
	<-done
	return err
}

// Done returns a channel that is closed when the reader goroutine has
// stopped (after Close, the end of Start's context or a receive error), or
// nil before Start.
func (s *Source) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Err returns the receive error that stopped the reader goroutine, or nil
// while it runs and when it stopped because of Close or the context.
func (s *Source) Err() error {
	if p := s.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// RcvBuf returns the socket receive buffer the kernel granted, in bytes as
// SO_RCVBUF reports it (twice the requested size: the kernel's bookkeeping
// is included), or 0 before Start.
func (s *Source) RcvBuf() int { return int(s.rcvBuf.Load()) }

// SeqGaps returns the number of messages found missing from the kernel's
// per-CPU sequences since Start; they are also counted in Stats().Lost.
func (s *Source) SeqGaps() uint64 { return s.seqGaps.Load() }

// Counters returns the source's detailed counters.
func (s *Source) Counters() Counters {
	return Counters{
		Events:      s.events.Load(),
		Messages:    s.messages.Load(),
		ThreadForks: s.threadForks.Load(),
		ThreadExits: s.threadExits.Load(),
		Acks:        s.acks.Load(),
		Overflows:   s.overflows.Load(),
		Probes:      s.probes.Load(),
		SeqGaps:     s.seqGaps.Load(),
		GapReports:  s.gapReports.Load(),
		SeqResets:   s.seqResets.Load(),
		Errors:      s.errs.Load(),
		Forged:      s.forged.Load(),
		Batches:     s.batches.Load(),
	}
}

// Stats returns the source's counters: Lost is the number of messages
// reported lost (the sequence gaps, and 1 for an overflow whose gaps no
// sequence showed), LostTimes the number of calls to Sink.Lost, Errors the
// messages skipped as malformed.
func (s *Source) Stats() methods.Stats {
	return methods.Stats{
		Events:    s.events.Load(),
		Lost:      s.lost.Load(),
		LostTimes: s.lostTimes.Load(),
		Errors:    s.errs.Load(),
	}
}

// monoToWall returns wall-clock ns minus CLOCK_MONOTONIC ns, measured now:
// adding it to proc_event.timestamp_ns gives the event's wall-clock time.
func monoToWall() int64 {
	var a, b unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &a)
	now := time.Now().UnixNano()
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &b)
	return now - (a.Nano()+b.Nano())/2
}
