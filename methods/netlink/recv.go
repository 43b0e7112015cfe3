package netlink

import (
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/methods"
)

// Receive batching: one recvmmsg(2) reads up to batchLen datagrams into
// slots of batchSlot bytes. A proc connector datagram holds one 76-byte
// message; a datagram longer than a slot is counted as an error.
const (
	batchLen  = 64
	batchSlot = 512
)

// probeAfter bounds how late an overflow is reported while the reader
// never finds the socket empty: the CPUs are probed this long after the
// ENOBUFS, and the loss is reported this long after the probe even if some
// of its messages were dropped.
const probeAfter = 20 * time.Millisecond

// maxCPU bounds the per-CPU sequence table (the kernel's NR_CPUS is at most
// 8192); messages from higher CPU numbers are not sequence-checked.
const maxCPU = 1 << 16

// reader is the receiving side of a Source: the reused buffers and the
// state of one subscription. It is used by one goroutine at a time: Start
// during the handshake, then the reader goroutine.
type reader struct {
	s         *Source
	sink      methods.Sink
	offset    int64  // wall-clock ns minus CLOCK_MONOTONIC ns
	listenAck uint32 // the ack number of our PROC_CN_MCAST_LISTEN
	handshake bool   // waiting for the acknowledgement
	acked     bool   // the acknowledgement arrived
	ackErr    uint32 // its errno
	err       error  // the receive error that stopped reading
	loggedBad bool

	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	sas  []unix.RawSockaddrNetlink
	buf  []byte
	msg  message
	seqs []cpuSeq
	self uint32 // this process's pid

	// An overflow episode, from an ENOBUFS to its report: the report
	// waits until every CPU was made to send a message (probe) and those
	// messages were read, so that its count is known (see overflow).
	overflowed bool      // an ENOBUFS not yet reported
	since      time.Time // the episode's first ENOBUFS, or its probe
	probed     bool      // the CPUs were probed in this episode
	probesOut  int       // probe messages not yet read
	again      bool      // an ENOBUFS after the probe: a new episode follows
	gapLost    uint64    // messages found missing in this episode
	probeTID   uint32    // the thread whose comm events are probes (0: none yet)

	readFn  func(fd uintptr) bool // r.read, bound once
	visitFn func(*message)        // r.visit, bound once
	flusher methods.Flusher       // the sink, when it holds events until Flush
}

// cpuSeq is the sequence state of one CPU.
type cpuSeq struct {
	next uint32 // the sequence number expected next
	seen bool
}

func newReader(s *Source, sink methods.Sink, listenAck uint32) *reader {
	r := &reader{
		s:         s,
		sink:      sink,
		offset:    monoToWall(),
		listenAck: listenAck,
		hdrs:      make([]unix.Mmsghdr, batchLen),
		iovs:      make([]unix.Iovec, batchLen),
		sas:       make([]unix.RawSockaddrNetlink, batchLen),
		buf:       make([]byte, batchLen*batchSlot),
		self:      uint32(os.Getpid()),
	}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.buf[i*batchSlot]
		r.iovs[i].SetLen(batchSlot)
		r.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.sas[i]))
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
	}
	r.readFn = r.read
	r.visitFn = r.visit
	r.flusher, _ = sink.(methods.Flusher)
	return r
}

// read is the syscall.RawConn Read callback. It drains the socket with
// recvmmsg into the reused buffers, handling each datagram, and returns
// false to wait for the socket to become readable again, or true to stop
// (Close, a fatal error, the end of the handshake).
//
// It reads until EAGAIN even after a short batch: recvmmsg also stops short
// when an error (ENOBUFS) interrupts it, keeping the error for the next
// call, and while the queue is not drained the kernel drops every new
// message for the socket (NETLINK_S_CONGESTED) without waking it again.
//
// recvmmsg is called with MSG_DONTWAIT on a non-blocking socket: it never
// blocks, so it is made as a raw system call, without telling the Go
// scheduler. Through the scheduler, each return from the call woke the
// runtime's idle monitor thread: on an otherwise idle process that doubled
// the CPU cost of a message.
func (r *reader) read(fd uintptr) bool {
	for {
		if r.s.stopping.Load() {
			return true
		}
		for i := range r.hdrs {
			r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrNetlink
			r.hdrs[i].Hdr.Flags = 0
		}
		got, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
		case unix.EAGAIN:
			if r.overflowed {
				// Drained: probe, then read the probe's messages
				// (queued by the time it returns); drained again
				// after the probe, report.
				if !r.probed {
					r.probe()
				} else {
					r.reportOverflow()
				}
				continue
			}
			return false
		case unix.EINTR:
			continue
		case unix.ENOBUFS:
			r.overflow()
			continue
		default:
			r.err = os.NewSyscallError("recvmmsg", e)
			return true
		}
		n := int(got)
		r.s.batches.Add(1)
		for i := 0; i < n; i++ {
			h := &r.hdrs[i]
			l := min(int(h.Len), batchSlot)
			r.datagram(r.buf[i*batchSlot:i*batchSlot+l], r.sas[i].Pid, h.Hdr.Flags&unix.MSG_TRUNC != 0)
		}
		r.flush(false)
		if r.overflowed && time.Since(r.since) >= probeAfter {
			// Still not drained: do not wait for it.
			if !r.probed {
				r.probe()
			} else {
				r.reportOverflow()
			}
		}
		if r.handshake && r.acked {
			return true
		}
	}
}

// flush calls the sink's Flush, if it has one: after each batch, and idle
// when the socket is drained and the reader is about to wait for it (or
// stops).
func (r *reader) flush(idle bool) {
	if r.flusher != nil {
		r.flusher.Flush(idle)
	}
}

// datagram handles one received datagram from port (0: the kernel).
func (r *reader) datagram(b []byte, port uint32, trunc bool) {
	s := r.s
	if port != 0 {
		// Only the kernel (port 0) speaks for the proc connector; a
		// privileged process could send to the group too.
		s.forged.Add(1)
		s.errs.Add(1)
		r.badOnce("netlink: message not from the kernel, skipped", "port", port)
		return
	}
	if trunc {
		s.errs.Add(1)
		r.badOnce("netlink: truncated datagram skipped", "size", len(b))
		return
	}
	if bad := parse(b, &r.msg, r.visitFn); bad > 0 {
		s.errs.Add(uint64(bad))
		r.badOnce("netlink: malformed message skipped", "size", len(b), "bad", bad)
	}
}

// badOnce logs the first malformed message at warning level, the others at
// debug level.
func (r *reader) badOnce(msg string, args ...any) {
	if !r.loggedBad {
		r.loggedBad = true
		r.s.log.Warn(msg, args...)
		return
	}
	r.s.log.Debug(msg, args...)
}

// overflow handles ENOBUFS: the kernel dropped messages for this socket.
// Reading goes on. How many were dropped shows in the per-CPU sequences,
// but only when each CPU sends its next message, which may be much later:
// so the loss is reported once the socket is drained (or probeAfter has
// passed) and every CPU was made to send a message and that message read
// (probe), with the count the sequences then show.
func (r *reader) overflow() {
	if r.handshake {
		return // before Start returned: nothing was delivered yet
	}
	r.s.overflows.Add(1)
	switch {
	case !r.overflowed:
		r.overflowed, r.since = true, time.Now()
	case r.probed:
		r.again = true // dropped after the probe: the next report's
	}
}

// probe makes every CPU the process may run on send a message, so that a
// loss shows now as a gap in each CPU's sequence: a thread pinned to each
// CPU in turn sets its own name to what it is (prctl(PR_SET_NAME) sends a
// comm event from the CPU it runs on, and changes nothing else). visit
// skips these events. A CPU this process may not run on is not probed:
// its losses show with its next message.
func (r *reader) probe() {
	var tid int
	_, n := r.s.onEachCPU(func(int) bool {
		tid = unix.Gettid()
		var name [16]byte
		if unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0) != nil {
			return false
		}
		err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
		runtime.KeepAlive(&name)
		return err == nil
	})
	r.probeTID = uint32(tid)
	r.probed, r.probesOut, r.since = true, n, time.Now()
	r.s.probes.Add(1)
	if n == 0 {
		r.reportOverflow()
	}
}

// probeSeen notes one probe message read; with the last one the overflow
// is reported.
func (r *reader) probeSeen() {
	if r.probesOut == 0 {
		return // a probe's message read after its report
	}
	if r.probesOut--; r.probesOut == 0 && r.overflowed {
		r.reportOverflow()
	}
}

// reportOverflow ends the overflow episode: it reports the messages the
// sequences showed missing since its ENOBUFS, at least one (the kernel
// reports ENOBUFS when it drops one). An ENOBUFS read after the probe
// starts the next episode.
func (r *reader) reportOverflow() {
	n := max(r.gapLost, 1)
	r.overflowed, r.probed, r.probesOut, r.gapLost = r.again, false, 0, 0
	if r.again {
		r.again, r.since = false, time.Now()
	}
	r.s.lost.Add(n)
	r.s.lostTimes.Add(1)
	r.sink.Lost(n, ReasonOverflow)
}

// visit handles one decoded message: it checks the CPU's sequence, notes
// acknowledgements and delivers events.
func (r *reader) visit(m *message) {
	s := r.s
	s.messages.Add(1)
	r.checkSeq(m.CPU, m.Seq)
	if m.What == whatNone {
		s.acks.Add(1)
		if r.handshake && !r.acked && m.Ack == r.listenAck+1 {
			r.acked, r.ackErr = true, m.D[0]
		}
		return
	}
	if r.handshake {
		return // before our subscription was acknowledged
	}
	if m.What == whatComm && m.D[1] == r.self && m.D[0] == r.probeTID && r.probeTID != 0 {
		r.probeSeen() // our own probe
		return
	}
	ev, skip := toEvent(m, r.offset)
	if ev == nil {
		switch skip {
		case skipThreadFork:
			s.threadForks.Add(1)
		case skipThreadExit:
			s.threadExits.Add(1)
		}
		return
	}
	s.events.Add(1)
	r.sink.Event(ev)
}

// checkSeq tracks cn_msg.seq. The kernel numbers messages from a per-CPU
// counter, taken and sent under a CPU-local lock with preemption disabled
// (send_msg in drivers/connector/cn_proc.c), and stamps proc_event.cpu at
// the same time: each CPU's messages reach the socket in order, so a jump
// in one CPU's sequence is a loss. Acknowledgements are numbered too.
func (r *reader) checkSeq(cpu, seq uint32) {
	if cpu >= maxCPU {
		return
	}
	if int(cpu) >= len(r.seqs) {
		seqs := make([]cpuSeq, min(max(int(cpu)+1, 2*len(r.seqs), 64), maxCPU))
		copy(seqs, r.seqs)
		r.seqs = seqs
	}
	c := &r.seqs[cpu]
	if !c.seen {
		c.seen, c.next = true, seq+1
		return
	}
	d := int32(seq - c.next)
	c.next = seq + 1
	switch {
	case d == 0:
	case d < 0:
		r.s.seqResets.Add(1)
	case r.handshake:
		// Before our subscription counted: not ours to report.
	default:
		r.s.seqGaps.Add(uint64(d))
		r.s.gapReports.Add(1)
		if r.overflowed {
			r.gapLost += uint64(d) // reported with the overflow
			return
		}
		r.s.lost.Add(uint64(d))
		r.s.lostTimes.Add(1)
		r.sink.Lost(uint64(d), ReasonSeqGap)
	}
}
