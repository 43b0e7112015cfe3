package netlink

import (
	"encoding/binary"
	"time"

	"github.com/proctrack/proctrack/procmon/process"
)

// Wire constants of the proc connector (include/uapi/linux/connector.h and
// include/uapi/linux/cn_proc.h).
const (
	// protoConnector is NETLINK_CONNECTOR, the netlink family.
	protoConnector = 11
	// cnIdxProc and cnValProc are the proc connector's cb_id; cnIdxProc
	// is also its multicast group.
	cnIdxProc = 1
	cnValProc = 1

	// proc_cn_mcast_op values.
	mcastListen = 1
	mcastIgnore = 2

	// proc_event.what values.
	whatNone     = 0x00000000
	whatFork     = 0x00000001
	whatExec     = 0x00000002
	whatUID      = 0x00000004
	whatGID      = 0x00000040
	whatSID      = 0x00000080
	whatPtrace   = 0x00000100
	whatComm     = 0x00000200
	whatCoredump = 0x40000000
	whatExit     = 0x80000000

	nlmsgHdrLen = 16 // struct nlmsghdr
	cnMsgLen    = 20 // struct cn_msg without data
	// procEventHdr is what, cpu and timestamp_ns: the union starts at
	// offset 16 (timestamp_ns is 8-aligned and the kernel aligns the
	// whole proc_event so).
	procEventHdr = 16
	// procEventLen is sizeof(struct proc_event) today: the header and a
	// 24-byte union (comm and exit are the largest members).
	procEventLen = procEventHdr + 24

	nlmsgNoop    = 0x1
	nlmsgError   = 0x2
	nlmsgDone    = 0x3
	nlmsgOverrun = 0x4
)

// unionLen is the number of bytes of the event_data union each message type
// needs; messages shorter than that are malformed.
func unionLen(what uint32) (int, bool) {
	switch what {
	case whatNone:
		return 4, true // ack.err
	case whatExec, whatSID:
		return 8, true
	case whatFork, whatUID, whatGID, whatPtrace, whatCoredump:
		return 16, true
	case whatExit:
		return 16, true // pid, tgid, exit_code, exit_signal (parent ids since 4.16 not needed)
	case whatComm:
		return 24, true
	}
	return 0, false
}

// message is one decoded proc connector message: the cn_msg header fields
// that matter and the proc_event.
type message struct {
	Seq, Ack  uint32 // cn_msg.seq (per-CPU counter) and cn_msg.ack
	What, CPU uint32 // proc_event.what and .cpu
	Timestamp uint64 // proc_event.timestamp_ns, CLOCK_MONOTONIC
	// D holds the first six 32-bit words of event_data: for fork
	// parent_pid, parent_tgid, child_pid, child_tgid; for the others
	// process_pid, process_tgid, then the type's fields (ack: D[0] is
	// err; exit: exit_code, exit_signal, parent_pid, parent_tgid).
	D [6]uint32
	// Comm is comm_proc_event.comm (D[2:6] hold the same bytes).
	Comm [16]byte
}

// parse decodes a datagram read from a proc connector socket: one or more
// netlink messages, each holding a cn_msg and a proc_event. It calls visit for
// every well-formed message (m is reused: visit must not keep it) and
// returns how many malformed ones it skipped. A message is malformed when it
// is short, its lengths do not add up, its cb_id is not the proc connector's
// or its type is unknown; a bad netlink length ends the datagram. parse
// never panics, whatever b holds.
func parse(b []byte, m *message, visit func(*message)) (bad int) {
	le := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return bad + 1
		}
		l := le.Uint32(b[0:4])
		typ := le.Uint16(b[4:6])
		if l < nlmsgHdrLen || uint64(l) > uint64(len(b)) {
			return bad + 1
		}
		msg := b[nlmsgHdrLen:l]
		// Messages are padded to 4 bytes (NLMSG_ALIGN); the last one may
		// come without its padding.
		next := (uint64(l) + 3) &^ 3
		if next > uint64(len(b)) {
			next = uint64(len(b))
		}
		b = b[next:]

		switch typ {
		case nlmsgNoop:
			continue
		case nlmsgDone:
		default: // NLMSG_ERROR, NLMSG_OVERRUN, anything else: not an event
			bad++
			continue
		}
		if !decode(msg, m) {
			bad++
			continue
		}
		visit(m)
	}
	return bad
}

// decode decodes one netlink payload (cn_msg + proc_event) into m and reports
// whether it was a well-formed proc connector message.
func decode(b []byte, m *message) bool {
	le := binary.NativeEndian
	if len(b) < cnMsgLen {
		return false
	}
	if le.Uint32(b[0:4]) != cnIdxProc || le.Uint32(b[4:8]) != cnValProc {
		return false
	}
	dlen := int(le.Uint16(b[16:18]))
	data := b[cnMsgLen:]
	if dlen > len(data) || dlen < procEventHdr {
		return false
	}
	data = data[:dlen]
	// The kernel aligns proc_event to 8 bytes inside its buffer, but on
	// the wire it directly follows the 20-byte cn_msg: read it byte-wise.
	what := le.Uint32(data[0:4])
	need, ok := unionLen(what)
	if !ok || dlen < procEventHdr+need {
		return false
	}
	m.Seq = le.Uint32(b[8:12])
	m.Ack = le.Uint32(b[12:16])
	m.What = what
	m.CPU = le.Uint32(data[4:8])
	m.Timestamp = le.Uint64(data[8:16])
	u := data[procEventHdr:]
	m.D = [6]uint32{}
	for i := 0; i < len(m.D) && 4*i+4 <= len(u); i++ {
		m.D[i] = le.Uint32(u[4*i:])
	}
	if what == whatComm {
		copy(m.Comm[:], u[8:24])
	}
	return true
}

// Skip reasons returned by toEvent besides a nil event for acks.
const (
	skipNone = iota
	skipThreadFork
	skipThreadExit
)

// toEvent converts a decoded message into the Event the monitor receives,
// with its Time computed from the monotonic-to-wall offset (nanoseconds).
// It returns nil for messages that are not reported: acks (PROC_EVENT_NONE),
// the creation of a thread and the exit of a thread that is not the
// thread-group leader; skip says which.
func toEvent(m *message, offset int64) (ev *process.Event, skip int) {
	var (
		kind     process.EventKind
		pid, tid uint32
	)
	switch m.What {
	case whatFork:
		// parent_pid, parent_tgid, child_pid, child_tgid
		if m.D[2] != m.D[3] {
			return nil, skipThreadFork
		}
		kind, pid, tid = process.EventFork, m.D[3], m.D[2]
	case whatExit:
		if m.D[0] != m.D[1] {
			return nil, skipThreadExit
		}
		kind, pid, tid = process.EventExit, m.D[1], m.D[0]
	case whatExec:
		kind = process.EventExec
	case whatUID:
		kind = process.EventUID
	case whatGID:
		kind = process.EventGID
	case whatSID:
		kind = process.EventSID
	case whatPtrace:
		kind = process.EventPtrace
	case whatComm:
		kind = process.EventComm
	case whatCoredump:
		kind = process.EventCoredump
	default: // whatNone: an ack
		return nil, skipNone
	}
	if m.What != whatFork && m.What != whatExit {
		// process_pid, process_tgid
		pid, tid = m.D[1], m.D[0]
	}
	ev = &process.Event{
		Kind:   kind,
		Time:   time.Unix(0, offset+int64(m.Timestamp)),
		Method: process.MethodNetlink,
		PID:    int(int32(pid)),
		TID:    int(int32(tid)),
	}
	switch m.What {
	case whatFork:
		ev.PPID = int(int32(m.D[1]))
	case whatExit:
		ev.ExitCode = int(int32(m.D[2]))
	case whatUID:
		ev.Creds = &process.CredChange{New: process.Credentials{UID: m.D[2], EUID: m.D[3]}}
	case whatGID:
		ev.Creds = &process.CredChange{New: process.Credentials{GID: m.D[2], EGID: m.D[3]}}
	case whatPtrace:
		ev.Tracer = int(int32(m.D[3])) // tracer_tgid, 0 on detach
	case whatComm:
		n := 0
		for n < len(m.Comm) && m.Comm[n] != 0 {
			n++
		}
		ev.Comm = string(m.Comm[:n])
	}
	return ev, skipNone
}
