package netlink

import (
	"os"
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

	readFn  func(fd uintptr) bool // r.read, bound once
	visitFn func(*message)        // r.visit, bound once
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
		if r.handshake && r.acked {
			return true
		}
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
// Reading goes on.
func (r *reader) overflow() {
	if r.handshake {
		return // before Start returned: nothing was delivered yet
	}
	r.s.overflows.Add(1)
	r.s.lostTimes.Add(1)
	r.sink.Lost(0, ReasonOverflow)
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
		r.s.lostTimes.Add(1)
		r.sink.Lost(uint64(d), ReasonSeqGap)
	}
}
