package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	libaudit "github.com/elastic/go-libaudit/v2"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/pollstop"
)

// nlConn is a NETLINK_AUDIT socket that its users wait on with poll(2), out
// of the Go runtime's poller: in the poller, every record the kernel queues
// wakes a runtime thread, even while the reader sleeps between bursts
// (Config.WakeupGap). A blocked receive wakes up at its read deadline or
// when Close signals the eventfd (libaudit's NetlinkClient blocks in
// recvfrom and cannot be woken). It implements libaudit.NetlinkSendReceiver,
// so libaudit.AuditClient can run its requests (SetPID) over it.
type nlConn struct {
	fd       int
	stop     *pollstop.Stopper
	portID   uint32
	seq      atomic.Uint32
	buf      []byte
	deadline atomic.Int64 // of blocking receives, unix ns; 0: none

	// The batch receive's state (the reader's alone): recvmmsg(2) headers,
	// sender addresses and buffers for up to batchSize datagrams, and the
	// slice of datagrams it returns.
	hdrs  []mmsghdr
	names []unix.RawSockaddrNetlink
	iovs  []unix.Iovec
	bufs  []byte
	out   [][]byte

	// mu is held for reading around every system call on fd and for
	// writing by Close, so that the descriptors are closed only once no
	// call uses them.
	mu     sync.RWMutex
	closed bool
}

var _ libaudit.NetlinkSendReceiver = (*nlConn)(nil)

// dialAudit opens a NETLINK_AUDIT socket bound to groups (0 for the unicast
// socket, libaudit.NetlinkGroupReadLog for the read-only multicast group,
// which needs CAP_AUDIT_READ) with a receive buffer of rcvbuf bytes.
func dialAudit(groups uint32, rcvbuf int) (*nlConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("audit netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("bind audit netlink socket (groups %#x): %w", groups, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("audit netlink getsockname: %w", err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		_ = unix.Close(fd)
		return nil, errors.New("audit netlink: unexpected socket address type")
	}
	if rcvbuf > 0 {
		// SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN; otherwise
		// the kernel caps SO_RCVBUF at rmem_max.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
	}
	// Missing ENOBUFS reports would hide multicast losses: keep them on.
	stop, err := pollstop.New()
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("audit netlink: %w", err)
	}
	return &nlConn{fd: fd, stop: stop, portID: nl.Pid, buf: make([]byte, 64<<10)}, nil
}

// Batch receive: one recvmmsg(2) reads up to batchSize records (one
// datagram each, about 11 per exec'd /bin/true), each into a slot of
// batchSlot bytes. The kernel keeps its records below 8970 bytes
// (MAX_AUDIT_MESSAGE_LENGTH, auditd's buffer): an EXECVE record is split
// at 7,500 bytes, a path hex-encoded is 8 KiB at most. A longer datagram
// is cut, flagged MSG_TRUNC, and counted as an error by the reader.
const (
	batchSize = 16
	batchSlot = 16 << 10
)

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// errTruncated is returned by recvBatch, with the datagrams, when one of
// them was longer than batchSlot.
var errTruncated = errors.New("audit netlink: record longer than the receive slot (cut)")

// recvBatch reads the datagrams queued from the kernel, up to batchSize,
// with one system call. They are valid until the next call. Like recv, a
// blocking call waits for one (returning os.ErrDeadlineExceeded at the read
// deadline, os.ErrClosed after Close) and a non-blocking one returns EAGAIN
// when nothing is queued. A datagram cut at batchSlot is left out and
// reported with errTruncated along with the others.
func (c *nlConn) recvBatch(nonBlocking bool) ([][]byte, error) {
	if c.hdrs == nil {
		c.hdrs = make([]mmsghdr, batchSize)
		c.names = make([]unix.RawSockaddrNetlink, batchSize)
		c.iovs = make([]unix.Iovec, batchSize)
		c.bufs = make([]byte, batchSize*batchSlot)
		c.out = make([][]byte, 0, batchSize)
		for i := range c.hdrs {
			c.iovs[i].Base = &c.bufs[i*batchSlot]
			c.iovs[i].SetLen(batchSlot)
			h := &c.hdrs[i].hdr
			h.Name = (*byte)(unsafe.Pointer(&c.names[i]))
			h.Iov = &c.iovs[i]
			h.SetIovlen(1)
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for {
		if c.closed {
			return nil, os.ErrClosed
		}
		for i := range c.hdrs {
			c.hdrs[i].hdr.Namelen = unix.SizeofSockaddrNetlink
			c.hdrs[i].hdr.Flags = 0
		}
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&c.hdrs[0])),
			batchSize, unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN && !nonBlocking:
			if err := c.waitReadable(); err != nil {
				return nil, err
			}
			continue
		case e != 0:
			return nil, e
		}
		out := c.out[:0]
		var err error
		for i := range int(r) {
			h := &c.hdrs[i]
			switch {
			case c.names[i].Pid != 0:
				continue // not from the kernel: ignore
			case h.hdr.Flags&unix.MSG_TRUNC != 0:
				err = errTruncated
			case h.n < unix.SizeofNlMsghdr:
				err = fmt.Errorf("audit netlink: short message (%d bytes)", h.n)
			default:
				out = append(out, c.bufs[i*batchSlot:i*batchSlot+int(h.n)])
			}
		}
		if len(out) == 0 && err == nil {
			continue // only datagrams to ignore
		}
		return out, err
	}
}

// Send sends msg to the kernel with the next sequence number and returns it.
func (c *nlConn) Send(msg syscall.NetlinkMessage) (uint32, error) {
	return c.send(msg, false)
}

// SendNoWait is Send without waiting for buffer space.
func (c *nlConn) SendNoWait(msg syscall.NetlinkMessage) (uint32, error) {
	return c.send(msg, true)
}

func (c *nlConn) send(msg syscall.NetlinkMessage, noWait bool) (uint32, error) {
	seq := c.seq.Add(1)
	b := make([]byte, unix.SizeofNlMsghdr+len(msg.Data))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], msg.Header.Type)
	binary.NativeEndian.PutUint16(b[6:], msg.Header.Flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[12:], c.portID)
	copy(b[unix.SizeofNlMsghdr:], msg.Data)
	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for {
		if c.closed {
			return seq, os.ErrClosed
		}
		err := unix.Sendto(c.fd, b, 0, to)
		if noWait || !errors.Is(err, unix.EAGAIN) {
			return seq, err
		}
		if err := c.wait(unix.POLLOUT, -1); err != nil {
			return seq, err
		}
	}
}

// Receive reads one datagram and hands it to p; with nonBlocking it
// returns EAGAIN when nothing is queued. Used by libaudit's request code.
func (c *nlConn) Receive(nonBlocking bool, p libaudit.NetlinkParser) ([]syscall.NetlinkMessage, error) {
	b, err := c.recv(nonBlocking)
	if err != nil {
		return nil, err
	}
	return p(b)
}

// recv reads one datagram from the kernel into the connection's buffer
// (valid until the next call). A blocking recv returns
// os.ErrDeadlineExceeded at the read deadline and os.ErrClosed once the
// connection is closed; a non-blocking one returns EAGAIN when nothing is
// queued.
func (c *nlConn) recv(nonBlocking bool) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for {
		if c.closed {
			return nil, os.ErrClosed
		}
		n, from, err := unix.Recvfrom(c.fd, c.buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN) && !nonBlocking:
			if err := c.waitReadable(); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // not from the kernel: ignore
		}
		if n < unix.SizeofNlMsghdr {
			return nil, fmt.Errorf("audit netlink: short message (%d bytes)", n)
		}
		return c.buf[:n], nil
	}
}

// waitReadable waits for a datagram until the read deadline: it returns
// nil when one may be queued (or the wait was cut short: the caller tries
// again), os.ErrDeadlineExceeded once the deadline has passed and
// os.ErrClosed after Close. Called with mu held for reading.
func (c *nlConn) waitReadable() error {
	timeout := time.Duration(-1)
	if d := c.deadline.Load(); d != 0 {
		if timeout = time.Until(time.Unix(0, d)); timeout <= 0 {
			return os.ErrDeadlineExceeded
		}
	}
	return c.wait(unix.POLLIN, timeout)
}

// wait waits for events on the socket, at most timeout (-1: no limit). It
// returns nil when the socket may be ready or the timeout passed (the
// caller tries again and checks its deadline), and os.ErrClosed after
// Close. Called with mu held for reading.
func (c *nlConn) wait(events int16, timeout time.Duration) error {
	stopped, err := c.stop.Wait(c.fd, events, timeout)
	if stopped {
		return os.ErrClosed
	}
	return err
}

// sleep waits d without reading: records queued meanwhile wake no thread.
// Close cuts it short.
func (c *nlConn) sleep(d time.Duration) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed {
		c.stop.Sleep(d)
	}
}

// setReadDeadline sets the deadline of blocking receives.
func (c *nlConn) setReadDeadline(t time.Time) error {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	c.deadline.Store(d)
	return nil
}

// Close wakes a blocked receive or send, waits for it to return, and
// closes the socket. A second Close returns nil.
func (c *nlConn) Close() error {
	c.mu.RLock()
	if !c.closed {
		_ = c.stop.Stop()
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	err := unix.Close(c.fd)
	_ = c.stop.Close()
	return err
}

// splitMessage returns the type and payload of a datagram from the kernel.
// An audit datagram carries one message, whose header length is not
// reliable (older kernels leave out the header): the payload is the rest
// of the datagram, as in libaudit.
func splitMessage(b []byte) (typ uint16, data []byte) {
	return binary.NativeEndian.Uint16(b[4:]), b[unix.SizeofNlMsghdr:]
}

// encodeStatus is the wire format of struct audit_status.
func encodeStatus(s libaudit.AuditStatus) []byte {
	v := [...]uint32{uint32(s.Mask), s.Enabled, s.Failure, s.PID, s.RateLimit, s.BacklogLimit,
		s.Lost, s.Backlog, s.FeatureBitmap, s.BacklogWaitTime, s.BacklogWaitTimeActual}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.NativeEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// setStatus sends AUDIT_SET with st and waits for the kernel's answer. It
// covers what libaudit has no call for: setting the audit pid to 0, which
// only the process that owns it may do.
func setStatus(nl libaudit.NetlinkSendReceiver, st libaudit.AuditStatus) error {
	seq, err := nl.Send(syscall.NetlinkMessage{
		Header: syscall.NlMsghdr{Type: libaudit.AuditSet, Flags: syscall.NLM_F_REQUEST | syscall.NLM_F_ACK},
		Data:   encodeStatus(st),
	})
	if err != nil {
		return fmt.Errorf("send AUDIT_SET: %w", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		msgs, err := nl.Receive(true, parseOne)
		switch {
		case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
			if time.Now().After(deadline) {
				return errors.New("AUDIT_SET: no answer from the kernel")
			}
			time.Sleep(2 * time.Millisecond)
			continue
		case err != nil:
			return fmt.Errorf("AUDIT_SET answer: %w", err)
		}
		m := msgs[0]
		if m.Header.Seq != seq || m.Header.Type != syscall.NLMSG_ERROR {
			continue // a record or a stale answer
		}
		return libaudit.ParseNetlinkError(m.Data)
	}
}

// parseOne is a libaudit.NetlinkParser for one audit datagram.
func parseOne(b []byte) ([]syscall.NetlinkMessage, error) {
	if len(b) < unix.SizeofNlMsghdr {
		return nil, syscall.EINVAL
	}
	return []syscall.NetlinkMessage{{
		Header: syscall.NlMsghdr{
			Len:   binary.NativeEndian.Uint32(b[0:]),
			Type:  binary.NativeEndian.Uint16(b[4:]),
			Flags: binary.NativeEndian.Uint16(b[6:]),
			Seq:   binary.NativeEndian.Uint32(b[8:]),
			Pid:   binary.NativeEndian.Uint32(b[12:]),
		},
		Data: b[unix.SizeofNlMsghdr:],
	}}, nil
}
