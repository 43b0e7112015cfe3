package netlink

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/proctrack/proctrack/procmon/process"
)

// msgSpec describes a message for buildMsg.
type msgSpec struct {
	nlType   uint16 // 0: NLMSG_DONE
	idx, val uint32 // 0: the proc connector's
	seq, ack uint32
	cnLen    int // -1: the proc_event's size
	what     uint32
	cpu      uint32
	ts       uint64
	d        [6]uint32
	comm     string
}

// buildMsg encodes one netlink message as the kernel sends it: nlmsghdr,
// cn_msg, proc_event (40 bytes).
func buildMsg(s msgSpec) []byte {
	le := binary.NativeEndian
	ev := make([]byte, procEventLen)
	le.PutUint32(ev[0:], s.what)
	le.PutUint32(ev[4:], s.cpu)
	le.PutUint64(ev[8:], s.ts)
	for i, v := range s.d {
		le.PutUint32(ev[procEventHdr+4*i:], v)
	}
	if s.comm != "" {
		copy(ev[procEventHdr+8:procEventHdr+24], s.comm)
	}
	idx, val := s.idx, s.val
	if idx == 0 && val == 0 {
		idx, val = cnIdxProc, cnValProc
	}
	cnLen := s.cnLen
	if cnLen == 0 {
		cnLen = len(ev)
	}
	cn := make([]byte, cnMsgLen)
	le.PutUint32(cn[0:], idx)
	le.PutUint32(cn[4:], val)
	le.PutUint32(cn[8:], s.seq)
	le.PutUint32(cn[12:], s.ack)
	le.PutUint16(cn[16:], uint16(cnLen))
	typ := s.nlType
	if typ == 0 {
		typ = nlmsgDone
	}
	total := nlmsgHdrLen + len(cn) + len(ev)
	b := make([]byte, nlmsgHdrLen, total)
	le.PutUint32(b[0:], uint32(total))
	le.PutUint16(b[4:], typ)
	le.PutUint32(b[8:], s.seq)
	b = append(b, cn...)
	return append(b, ev...)
}

// parseAll parses b and returns copies of the messages and the bad count.
func parseAll(b []byte) ([]message, int) {
	var out []message
	var m message
	bad := parse(b, &m, func(m *message) { out = append(out, *m) })
	return out, bad
}

func TestParseEvents(t *testing.T) {
	const offset = int64(1_700_000_000_000_000_000)
	const ts = 5_000_000_000
	at := time.Unix(0, offset+ts)
	ev := func(e process.Event) *process.Event {
		e.Time, e.Method = at, process.MethodNetlink
		return &e
	}
	tests := []struct {
		name string
		spec msgSpec
		want *process.Event
		skip int
	}{
		{"fork", msgSpec{what: whatFork, d: [6]uint32{10, 10, 20, 20}},
			ev(process.Event{Kind: process.EventFork, PID: 20, TID: 20, PPID: 10}), skipNone},
		{"fork from a thread", msgSpec{what: whatFork, d: [6]uint32{11, 10, 20, 20}},
			ev(process.Event{Kind: process.EventFork, PID: 20, TID: 20, PPID: 10}), skipNone},
		{"thread creation", msgSpec{what: whatFork, d: [6]uint32{10, 10, 21, 20}}, nil, skipThreadFork},
		{"exec", msgSpec{what: whatExec, d: [6]uint32{30, 30}},
			ev(process.Event{Kind: process.EventExec, PID: 30, TID: 30}), skipNone},
		{"exec from a thread", msgSpec{what: whatExec, d: [6]uint32{31, 30}},
			ev(process.Event{Kind: process.EventExec, PID: 30, TID: 31}), skipNone},
		{"uid", msgSpec{what: whatUID, d: [6]uint32{40, 40, 1000, 0}},
			ev(process.Event{Kind: process.EventUID, PID: 40, TID: 40,
				Creds: &process.CredChange{New: process.Credentials{UID: 1000, EUID: 0}}}), skipNone},
		{"gid", msgSpec{what: whatGID, d: [6]uint32{41, 41, 100, 200}},
			ev(process.Event{Kind: process.EventGID, PID: 41, TID: 41,
				Creds: &process.CredChange{New: process.Credentials{GID: 100, EGID: 200}}}), skipNone},
		{"sid", msgSpec{what: whatSID, d: [6]uint32{50, 50}},
			ev(process.Event{Kind: process.EventSID, PID: 50, TID: 50}), skipNone},
		{"ptrace attach", msgSpec{what: whatPtrace, d: [6]uint32{60, 60, 71, 70}},
			ev(process.Event{Kind: process.EventPtrace, PID: 60, TID: 60, Tracer: 70}), skipNone},
		{"ptrace detach", msgSpec{what: whatPtrace, d: [6]uint32{60, 60, 0, 0}},
			ev(process.Event{Kind: process.EventPtrace, PID: 60, TID: 60}), skipNone},
		{"comm", msgSpec{what: whatComm, d: [6]uint32{80, 80}, comm: "renamed"},
			ev(process.Event{Kind: process.EventComm, PID: 80, TID: 80, Comm: "renamed"}), skipNone},
		{"comm of 15 bytes", msgSpec{what: whatComm, d: [6]uint32{80, 81}, comm: "0123456789abcde"},
			ev(process.Event{Kind: process.EventComm, PID: 81, TID: 80, Comm: "0123456789abcde"}), skipNone},
		{"comm without NUL", msgSpec{what: whatComm, d: [6]uint32{80, 80}, comm: "0123456789abcdef"},
			ev(process.Event{Kind: process.EventComm, PID: 80, TID: 80, Comm: "0123456789abcdef"}), skipNone},
		{"coredump", msgSpec{what: whatCoredump, d: [6]uint32{90, 90, 1, 1}},
			ev(process.Event{Kind: process.EventCoredump, PID: 90, TID: 90}), skipNone},
		{"exit", msgSpec{what: whatExit, d: [6]uint32{100, 100, 256, 17, 1, 1}},
			ev(process.Event{Kind: process.EventExit, PID: 100, TID: 100, ExitCode: 256}), skipNone},
		{"exit killed", msgSpec{what: whatExit, d: [6]uint32{100, 100, 9, 17, 1, 1}},
			ev(process.Event{Kind: process.EventExit, PID: 100, TID: 100, ExitCode: 9}), skipNone},
		{"thread exit", msgSpec{what: whatExit, d: [6]uint32{101, 100, 0, 0xffffffff}}, nil, skipThreadExit},
		{"ack", msgSpec{what: whatNone, ack: 8, d: [6]uint32{1}}, nil, skipNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.ts, tt.spec.seq, tt.spec.cpu = ts, 42, 1
			msgs, bad := parseAll(buildMsg(tt.spec))
			if bad != 0 || len(msgs) != 1 {
				t.Fatalf("parse: %d messages, %d bad", len(msgs), bad)
			}
			m := msgs[0]
			d := m.D
			if m.What == whatComm {
				d[2], d[3], d[4], d[5] = 0, 0, 0, 0 // the name's bytes
			}
			if m.Seq != 42 || m.CPU != 1 || m.What != tt.spec.what || m.Timestamp != ts || m.Ack != tt.spec.ack || d != tt.spec.d {
				t.Errorf("decoded %+v from %+v", m, tt.spec)
			}
			got, skip := toEvent(&m, offset)
			if !reflect.DeepEqual(got, tt.want) || skip != tt.skip {
				t.Errorf("event %+v skip %d, want %+v skip %d", got, skip, tt.want, tt.skip)
			}
		})
	}
}

func TestParseAckErr(t *testing.T) {
	msgs, bad := parseAll(buildMsg(msgSpec{what: whatNone, ack: 5, d: [6]uint32{1}}))
	if bad != 0 || len(msgs) != 1 || msgs[0].D[0] != 1 || msgs[0].Ack != 5 {
		t.Fatalf("ack: %+v, %d bad", msgs, bad)
	}
}

// TestParseSeveral parses a datagram holding several messages, with and
// without the last one's padding, and NLMSG_NOOP fillers.
func TestParseSeveral(t *testing.T) {
	var dg []byte
	for i := range 5 {
		dg = append(dg, buildMsg(msgSpec{what: whatExec, seq: uint32(i), d: [6]uint32{uint32(i + 1), uint32(i + 1)}})...)
	}
	noop := make([]byte, nlmsgHdrLen)
	binary.NativeEndian.PutUint32(noop, nlmsgHdrLen)
	binary.NativeEndian.PutUint16(noop[4:], nlmsgNoop)
	dg = append(dg, noop...)
	msgs, bad := parseAll(dg)
	if bad != 0 || len(msgs) != 5 {
		t.Fatalf("%d messages, %d bad", len(msgs), bad)
	}
	for i, m := range msgs {
		if m.Seq != uint32(i) || m.D[1] != uint32(i+1) {
			t.Errorf("message %d: %+v", i, m)
		}
	}

	// A message whose length is not a multiple of 4, followed by another:
	// the second starts at the aligned offset.
	a := buildMsg(msgSpec{what: whatExec, d: [6]uint32{1, 1}})
	a = append(a, 0xEE) // one byte of junk inside the message
	binary.NativeEndian.PutUint32(a, uint32(len(a)))
	a = append(a, 0, 0, 0) // padding
	a = append(a, buildMsg(msgSpec{what: whatExec, d: [6]uint32{2, 2}})...)
	msgs, bad = parseAll(a)
	if bad != 0 || len(msgs) != 2 || msgs[1].D[0] != 2 {
		t.Fatalf("unaligned: %+v, %d bad", msgs, bad)
	}
}

// TestParseGarbled feeds malformed input: none may panic, each is counted.
func TestParseGarbled(t *testing.T) {
	good := buildMsg(msgSpec{what: whatComm, d: [6]uint32{1, 1}, comm: "x"})

	// Truncated at every offset: the netlink length then exceeds the
	// datagram, which is one bad message (none for the empty datagram).
	for n := range len(good) {
		msgs, bad := parseAll(good[:n])
		want := 1
		if n == 0 {
			want = 0
		}
		if len(msgs) != 0 || bad != want {
			t.Errorf("truncated to %d: %d messages, %d bad", n, len(msgs), bad)
		}
	}
	// Truncated at every offset with the lengths fixed up to match: the
	// message is then too short for its cn_msg or proc_event.
	for n := nlmsgHdrLen; n < len(good); n++ {
		b := append([]byte(nil), good[:n]...)
		binary.NativeEndian.PutUint32(b, uint32(n))
		if msgs, bad := parseAll(b); len(msgs) != 0 || bad != 1 {
			t.Errorf("short message of %d: %d messages, %d bad", n, len(msgs), bad)
		}
	}

	bad := func(name string, b []byte, wantBad int) {
		t.Helper()
		msgs, nbad := parseAll(b)
		if len(msgs) != 0 || nbad != wantBad {
			t.Errorf("%s: %d messages, %d bad, want 0 and %d", name, len(msgs), nbad, wantBad)
		}
	}
	bad("wrong idx", buildMsg(msgSpec{idx: 2, val: 1, what: whatExec}), 1)
	bad("wrong val", buildMsg(msgSpec{idx: 1, val: 2, what: whatExec}), 1)
	bad("huge cn len", buildMsg(msgSpec{cnLen: 0xffff, what: whatExec}), 1)
	bad("cn len one byte too long", buildMsg(msgSpec{cnLen: procEventLen + 1, what: whatExec}), 1)
	bad("cn len too small for comm", buildMsg(msgSpec{cnLen: procEventHdr + 8, what: whatComm}), 1)
	bad("cn len too small for a header", buildMsg(msgSpec{cnLen: 8, what: whatExec}), 1)
	bad("unknown what", buildMsg(msgSpec{what: 0x400}), 1)
	bad("nonzero-exit filter bit as what", buildMsg(msgSpec{what: 0x20000000}), 1)
	bad("NLMSG_ERROR", buildMsg(msgSpec{nlType: nlmsgError, what: whatExec}), 1)
	bad("NLMSG_OVERRUN", buildMsg(msgSpec{nlType: nlmsgOverrun, what: whatExec}), 1)
	bad("other type", buildMsg(msgSpec{nlType: 0x20, what: whatExec}), 1)

	huge := append([]byte(nil), good...)
	binary.NativeEndian.PutUint32(huge, 0xffffffff)
	bad("huge nlmsg_len", huge, 1)
	zero := append([]byte(nil), good...)
	binary.NativeEndian.PutUint32(zero, 0)
	bad("zero nlmsg_len", zero, 1)
	bad("short header", []byte{1, 2, 3}, 1)

	// A good message after a bad one is still read; a bad length ends
	// the datagram.
	mixed := append(buildMsg(msgSpec{idx: 9, what: whatExec}), good...)
	if msgs, nbad := parseAll(mixed); len(msgs) != 1 || nbad != 1 {
		t.Errorf("bad then good: %d messages, %d bad", len(msgs), nbad)
	}
	mixed = append(append([]byte(nil), good...), huge...)
	if msgs, nbad := parseAll(mixed); len(msgs) != 1 || nbad != 1 {
		t.Errorf("good then huge: %d messages, %d bad", len(msgs), nbad)
	}
}

// TestParseLonger accepts a proc_event longer than today's (a future
// kernel may grow the union) and an older, shorter exit event.
func TestParseLonger(t *testing.T) {
	b := buildMsg(msgSpec{what: whatExec, d: [6]uint32{3, 3}})
	b = append(b, make([]byte, 8)...)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	binary.NativeEndian.PutUint16(b[nlmsgHdrLen+16:], procEventLen+8)
	if msgs, bad := parseAll(b); bad != 0 || len(msgs) != 1 || msgs[0].D[1] != 3 {
		t.Errorf("longer event: %+v, %d bad", msgs, bad)
	}
	old := buildMsg(msgSpec{cnLen: procEventHdr + 16, what: whatExit, d: [6]uint32{4, 4, 0, 17, 9, 9}})
	msgs, bad := parseAll(old)
	if bad != 0 || len(msgs) != 1 || msgs[0].D[4] != 0 {
		t.Errorf("short exit: %+v, %d bad", msgs, bad)
	}
}

// FuzzParse checks that no input makes parse or toEvent panic, and that
// the counts add up.
func FuzzParse(f *testing.F) {
	f.Add(buildMsg(msgSpec{what: whatExec, d: [6]uint32{1, 1}}))
	f.Add(buildMsg(msgSpec{what: whatComm, d: [6]uint32{1, 1}, comm: "abc"}))
	f.Add(append(buildMsg(msgSpec{what: whatFork, d: [6]uint32{1, 1, 2, 2}}), buildMsg(msgSpec{what: whatExit, d: [6]uint32{2, 2}})...))
	f.Add(buildMsg(msgSpec{cnLen: 0xffff, what: whatExec}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m message
		n := 0
		bad := parse(b, &m, func(m *message) {
			n++
			if _, ok := unionLen(m.What); !ok {
				t.Fatalf("unknown type %#x delivered", m.What)
			}
			toEvent(m, 0)
		})
		if bad < 0 || (n+bad)*nlmsgHdrLen > len(b)+nlmsgHdrLen {
			t.Fatalf("%d messages and %d bad from %d bytes", n, bad, len(b))
		}
	})
}
