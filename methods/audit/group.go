package audit

import (
	"bytes"
	"errors"
	"time"
	"unsafe"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// This file groups the records of one audit event (one serial number) for
// the conversion, in place of go-libaudit's Reassembler and header parse,
// which allocated a string and a message per record and an event, its
// message slice and the list's bookkeeping per event: 23 of the 34
// allocations of an exec and its exit. Records are copied into buffers the
// grouper reuses, and converted from there: the conversion copies the
// strings an event keeps (untrusted), interning the ones that repeat.

// errHeader is the error of a record without a valid
// "audit(<seconds>.<milliseconds>:<serial>): " header.
var errHeader = errors.New("audit: record without a valid audit(<time>:<serial>) header")

// parseHeader reads the header the kernel puts before every record,
// "audit(<seconds>.<milliseconds>:<serial>): ", and returns the time, the
// serial and the record's body after it (leading and trailing space
// removed). Like go-libaudit's parse, the header may follow other text.
func parseHeader(data []byte) (ts time.Time, serial uint32, body []byte, err error) {
	open := bytes.IndexByte(data, '(')
	if open < 0 {
		return time.Time{}, 0, nil, errHeader
	}
	rest := data[open+1:]
	end := bytes.IndexByte(rest, ')')
	if end < 0 {
		return time.Time{}, 0, nil, errHeader
	}
	h := rest[:end]
	dot := bytes.IndexByte(h, '.')
	colon := bytes.IndexByte(h, ':')
	if dot < 0 || colon < dot {
		return time.Time{}, 0, nil, errHeader
	}
	sec, ok1 := parseDigits(h[:dot], 1<<62)
	msec, ok2 := parseDigits(h[dot+1:colon], 999)
	seq, ok3 := parseDigits(h[colon+1:], 1<<32-1)
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, 0, nil, errHeader
	}
	body = rest[end+1:]
	for len(body) > 0 && (body[0] == ':' || body[0] == ' ') {
		body = body[1:]
	}
	for n := len(body); n > 0 && (body[n-1] <= ' '); n-- {
		body = body[:n-1] // trailing space, newline, NUL
	}
	return time.Unix(int64(sec), int64(msec)*int64(time.Millisecond)).UTC(), uint32(seq), body, nil
}

// parseDigits parses a non-empty run of decimal digits no greater than
// limit.
func parseDigits(b []byte, limit uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v <= limit
}

// record is one record of an event: its type and its body (the text after
// the header).
type record struct {
	typ  auparse.AuditMessageType
	body string
}

// span is where a record's body lies in its event's text.
type span struct {
	typ        auparse.AuditMessageType
	start, end int
}

// pending is an event whose records are being gathered.
type pending struct {
	serial   uint32
	time     time.Time // the first record's timestamp
	expire   time.Time // when it is delivered as it is
	text     []byte    // the records' bodies, one after the other
	spans    []span
	complete bool
}

// maxKeptText bounds the text buffer a pending keeps for reuse: an event
// with more (a huge argv) leaves its buffer to the collector.
const maxKeptText = 64 << 10

// evictedRing is how many serials of events delivered incomplete the
// grouper remembers, to drop their late records.
const evictedRing = 64

// grouper groups records by serial number into events. An event ends with
// its EOE record, or with a SECCOMP record (written outside a system call,
// without one). Events are delivered in the order of their serials, as
// go-libaudit's reassembler delivered them: a complete event waits for
// the incomplete ones before it, which are delivered as they are once they
// have waited the timeout or once more than max events are in flight. A
// record of an event so delivered, arriving later, is dropped and counted
// (late). It is not safe for concurrent use: the reader goroutine owns it.
type grouper struct {
	max     int
	timeout time.Duration
	// deliver gets each event's records; their bodies are valid only
	// until it returns.
	deliver func(serial uint32, ts time.Time, recs []record, now time.Time)

	inflight []*pending // oldest serial first
	free     []*pending
	recs     []record // reused for each delivery

	evicted  [evictedRing]uint32 // serials delivered incomplete
	nEvicted int                 // how many of evicted are set
	next     int                 // where the next one goes
}

func newGrouper(max int, timeout time.Duration, deliver func(uint32, time.Time, []record, time.Time)) *grouper {
	return &grouper{max: max, timeout: timeout, deliver: deliver}
}

// before reports whether serial a comes before b; serials wrap around.
func before(a, b uint32) bool { return int32(a-b) < 0 }

// add adds a record of the event serial, received at now, and delivers
// what it completes. It reports a record dropped because its event was
// delivered incomplete before it came (late). An EOE record of an event
// not in flight is ignored.
func (g *grouper) add(typ auparse.AuditMessageType, serial uint32, ts time.Time, body []byte, now time.Time) (late bool) {
	i := g.find(serial)
	if typ == auparse.AUDIT_EOE {
		if i >= 0 {
			g.inflight[i].complete = true
			g.cleanUp(now)
		}
		return false
	}
	if i < 0 {
		if g.wasEvicted(serial) {
			return true
		}
		i = g.insert(serial, ts, now)
	}
	p := g.inflight[i]
	start := len(p.text)
	p.text = append(p.text, body...)
	p.spans = append(p.spans, span{typ, start, len(p.text)})
	if typ == auparse.AUDIT_SECCOMP {
		p.complete = true
	}
	g.cleanUp(now)
	return false
}

// find returns the index of serial in inflight, or -1. The event of a
// record is nearly always the newest.
func (g *grouper) find(serial uint32) int {
	for i := len(g.inflight) - 1; i >= 0; i-- {
		if g.inflight[i].serial == serial {
			return i
		}
	}
	return -1
}

// insert starts the event serial, in order, and returns its index.
func (g *grouper) insert(serial uint32, ts, now time.Time) int {
	var p *pending
	if n := len(g.free); n > 0 {
		p, g.free = g.free[n-1], g.free[:n-1]
	} else {
		p = &pending{}
	}
	p.serial, p.time, p.expire = serial, ts, now.Add(g.timeout)
	i := len(g.inflight)
	for i > 0 && before(serial, g.inflight[i-1].serial) {
		i--
	}
	g.inflight = append(g.inflight, nil)
	copy(g.inflight[i+1:], g.inflight[i:])
	g.inflight[i] = p
	return i
}

// wasEvicted reports whether serial's event was delivered incomplete.
func (g *grouper) wasEvicted(serial uint32) bool {
	for _, s := range g.evicted[:g.nEvicted] {
		if s == serial {
			return true
		}
	}
	return false
}

// cleanUp delivers, oldest first, the events that are complete, expired
// at now, or beyond max in flight, stopping at the first that is none.
func (g *grouper) cleanUp(now time.Time) {
	for len(g.inflight) > 0 {
		p := g.inflight[0]
		if !p.complete && len(g.inflight) <= g.max && now.Before(p.expire) {
			return
		}
		g.pop(now)
	}
}

// flush delivers every event in flight, as it is.
func (g *grouper) flush() {
	now := time.Now()
	for len(g.inflight) > 0 {
		g.pop(now)
	}
}

// pop delivers the oldest event at now and keeps its buffers for reuse.
func (g *grouper) pop(now time.Time) {
	p := g.inflight[0]
	copy(g.inflight, g.inflight[1:])
	g.inflight[len(g.inflight)-1] = nil
	g.inflight = g.inflight[:len(g.inflight)-1]
	if !p.complete {
		g.evicted[g.next] = p.serial
		g.next = (g.next + 1) % evictedRing
		g.nEvicted = min(g.nEvicted+1, evictedRing)
	}
	// The records' bodies are the buffer itself, valid until deliver
	// returns (the conversion copies, or interns, what an event keeps:
	// untrusted).
	text := unsafe.String(unsafe.SliceData(p.text), len(p.text))
	g.recs = g.recs[:0]
	for _, s := range p.spans {
		g.recs = append(g.recs, record{typ: s.typ, body: text[s.start:s.end]})
	}
	g.deliver(p.serial, p.time, g.recs, now)
	clear(g.recs)
	g.recs = g.recs[:0]
	if cap(p.text) > maxKeptText {
		p.text, p.spans = nil, nil
	}
	p.text, p.spans, p.complete = p.text[:0], p.spans[:0], false
	g.free = append(g.free, p)
}
