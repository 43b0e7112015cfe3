package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/proctrack/proctrack/procmon/process"
)

func TestParseHeader(t *testing.T) {
	cases := []struct {
		in     string
		ts     time.Time
		serial uint32
		body   string
	}{
		{"audit(1795452112.527:42): pid=1 x=2", time.Unix(1795452112, 527e6), 42, "pid=1 x=2"},
		{"audit(1.005:4294967295): ", time.Unix(1, 5e6), 4294967295, ""},
		{"audit(1.5:7):a=b\n\x00", time.Unix(1, 5e6), 7, "a=b"},
		{"type=SYSCALL msg=audit(3.000:9): a=1", time.Unix(3, 0), 9, "a=1"}, // as go-libaudit: text before it
	}
	for _, tc := range cases {
		ts, serial, body, err := parseHeader([]byte(tc.in))
		if err != nil || !ts.Equal(tc.ts) || serial != tc.serial || string(body) != tc.body {
			t.Errorf("%q: %v %d %q %v, want %v %d %q", tc.in, ts, serial, body, err, tc.ts, tc.serial, tc.body)
		}
	}
	for _, bad := range []string{
		"", "audit", "audit(", "audit(1.2:3", "audit(1:2.3): ", "audit(.5:3): ", "audit(1.:3): ",
		"audit(1.5:): ", "audit(1.5:-3): ", "audit(1.5:4294967296): ", "audit(1.1000:3): ",
		"audit(x.5:3): ", "audit(1.5:3x): ", "audit(99999999999999999999.5:3): ", "audit(1.5.6:3): ",
		"garbage without a header",
	} {
		if _, _, _, err := parseHeader([]byte(bad)); !errors.Is(err, errHeader) {
			t.Errorf("%q: %v, want errHeader", bad, err)
		}
	}
}

// delivered is an event as a grouper delivered it.
type delivered struct {
	serial uint32
	recs   []record
}

func (d delivered) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:", d.serial)
	for _, r := range d.recs {
		fmt.Fprintf(&b, " %d=%q", r.typ, r.body)
	}
	return b.String()
}

// testGrouper returns a grouper that records what it delivers.
func testGrouper(max int, timeout time.Duration) (*grouper, *[]delivered) {
	var out []delivered
	g := newGrouper(max, timeout, func(serial uint32, _ time.Time, recs []record, _ time.Time) {
		// The grouper reuses recs: keep a copy.
		out = append(out, delivered{serial, slices.Clone(recs)})
	})
	return g, &out
}

// step is one record given to a grouper, at a time offset.
type step struct {
	typ    auparse.AuditMessageType
	serial uint32
	body   string
	at     time.Duration
}

const (
	sc  = auparse.AUDIT_SYSCALL
	exv = auparse.AUDIT_EXECVE
	eoe = auparse.AUDIT_EOE
)

func TestGrouper(t *testing.T) {
	cases := []struct {
		name  string
		max   int
		steps []step
		flush bool
		want  []string // delivered events, in order
		late  int      // records dropped: their event was delivered
	}{
		{name: "one event", steps: []step{{sc, 5, "a", 0}, {exv, 5, "b", 0}, {eoe, 5, "", 0}},
			want: []string{`5: 1300="a" 1309="b"`}},
		{name: "interleaved, delivered in serial order",
			steps: []step{{sc, 5, "a", 0}, {sc, 6, "c", 0}, {exv, 5, "b", 0}, {eoe, 6, "", 0}, {eoe, 5, "", 0}},
			want:  []string{`5: 1300="a" 1309="b"`, `6: 1300="c"`}},
		{name: "out of order serials", steps: []step{{sc, 9, "x", 0}, {sc, 7, "y", 0}, {eoe, 9, "", 0}, {eoe, 7, "", 0}},
			want: []string{`7: 1300="y"`, `9: 1300="x"`}},
		{name: "serials wrap", steps: []step{{sc, 4294967295, "x", 0}, {sc, 0, "y", 0}, {eoe, 0, "", 0}, {eoe, 4294967295, "", 0}},
			want: []string{`4294967295: 1300="x"`, `0: 1300="y"`}},
		{name: "EOE of no event ignored", steps: []step{{eoe, 3, "", 0}, {sc, 4, "a", 0}, {eoe, 4, "", 0}},
			want: []string{`4: 1300="a"`}},
		{name: "seccomp ends its event", steps: []step{{auparse.AUDIT_SECCOMP, 8, "s", 0}},
			want: []string{`8: 1326="s"`}},
		{name: "incomplete held until the timeout",
			steps: []step{{sc, 5, "a", 0}, {sc, 6, "b", 0}, {eoe, 6, "", 0}, {sc, 7, "c", 999 * time.Millisecond}},
			want:  nil},
		{name: "timeout delivers it as it is, then what waited; a late record is dropped",
			steps: []step{{sc, 5, "a", 0}, {sc, 6, "b", 0}, {eoe, 6, "", 0}, {sc, 7, "c", time.Second}, {exv, 5, "late", time.Second}, {eoe, 5, "", time.Second}},
			want:  []string{`5: 1300="a"`, `6: 1300="b"`}, late: 1},
		{name: "too many in flight: the oldest goes",
			max:   2,
			steps: []step{{sc, 1, "a", 0}, {sc, 2, "b", 0}, {sc, 3, "c", 0}, {exv, 1, "late", 0}, {eoe, 3, "", 0}, {eoe, 2, "", 0}},
			want:  []string{`1: 1300="a"`, `2: 1300="b"`, `3: 1300="c"`}, late: 1},
		{name: "flush delivers what is left", steps: []step{{sc, 1, "a", 0}, {sc, 2, "b", 0}}, flush: true,
			want: []string{`1: 1300="a"`, `2: 1300="b"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = DefaultMaxInFlight
			}
			g, out := testGrouper(max, time.Second)
			t0 := time.Now()
			late := 0
			for _, s := range tc.steps {
				if g.add(s.typ, s.serial, t0, []byte(s.body), t0.Add(s.at)) {
					late++
				}
			}
			if tc.flush {
				g.flush()
			}
			var got []string
			for _, d := range *out {
				got = append(got, d.String())
			}
			if !slices.Equal(got, tc.want) || late != tc.late {
				t.Errorf("delivered %q, %d late; want %q, %d late", got, late, tc.want, tc.late)
			}
		})
	}
}

// TestGrouperReuse checks that an event keeps its strings when the
// grouper reuses its buffers for the next events: the records it delivers
// are the buffers themselves, and the conversion copies what it keeps.
func TestGrouperReuse(t *testing.T) {
	var (
		c   converter
		evs []*process.Event
	)
	g := newGrouper(4, time.Second, func(_ uint32, ts time.Time, recs []record, _ time.Time) {
		ev, err := c.convert(ts, recs)
		if err != nil || ev == nil {
			t.Fatalf("convert: %v, %v", ev, err)
		}
		evs = append(evs, ev)
	})
	now := time.Now()
	word := func(i int) string { return strings.Repeat(string(rune('a'+i)), 20+i) }
	for i := range 10 {
		hex := strings.ToUpper(fmt.Sprintf("%x", word(i)+" x"))
		g.add(sc, uint32(i), now, []byte(fmt.Sprintf(`arch=c000003e syscall=59 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 ppid=1 pid=%d uid=0 comm="%s" exe="/%s"`, 100+i, word(i), word(i))), now)
		g.add(exv, uint32(i), now, []byte(fmt.Sprintf(`argc=3 a0="%s" a1=%s a2_len=%d a2[0]="%s" a2[1]="%s"`, word(i), hex, 2*len(word(i)), word(i), word(i))), now)
		g.add(auparse.AUDIT_CWD, uint32(i), now, []byte(fmt.Sprintf(`cwd="/%s"`, word(i))), now)
		g.add(eoe, uint32(i), now, nil, now)
	}
	if len(evs) != 10 {
		t.Fatalf("%d events", len(evs))
	}
	for i, ev := range evs {
		w := word(i)
		p := ev.Process
		if p.ID != 100+i || p.Comm != w || p.Path != "/"+w || p.CWD != "/"+w || !slices.Equal(p.Args, []string{w, w + " x", w + w}) {
			t.Errorf("event %d after the buffers' reuse: %+v", i, p)
		}
	}
	if len(g.free) != 1 || len(g.inflight) != 0 {
		t.Errorf("%d buffers kept, %d in flight: want 1 and 0", len(g.free), len(g.inflight))
	}
}

// TestShared: the strings an event keeps are copies of the reused buffer,
// one shared copy of a short string, a copy of its own for a long one.
func TestShared(t *testing.T) {
	b := []byte("/usr/bin/true")
	alias := unsafe.String(&b[0], len(b))
	s1 := shared(alias)
	b[0] = 'X' // the buffer is reused
	if s1 != "/usr/bin/true" {
		t.Fatalf("kept %q: not a copy", s1)
	}
	if s2 := shared("/usr/bin/true"); unsafe.StringData(s2) != unsafe.StringData(s1) {
		t.Error("the second keep copied again")
	}
	long := strings.Repeat("x", maxInterned+1)
	if l1, l2 := shared(long), shared(long); l1 != long || unsafe.StringData(l1) == unsafe.StringData(long) || unsafe.StringData(l1) == unsafe.StringData(l2) {
		t.Error("a long string not copied, or shared")
	}
	b[0] = '/'
	if s, err := untrusted(field{key: "a0", val: alias, quoted: true}, strings.Clone); err != nil || s != alias || unsafe.StringData(s) == unsafe.StringData(alias) {
		t.Errorf("untrusted with strings.Clone = %q, %v: not a copy", s, err)
	}
}

// TestReceiveMalformed feeds damaged datagrams through the receive path:
// each gets a clear outcome (dropped and counted in Stats.Errors, or an
// event with what could be read), none a panic, and the events around
// them are delivered.
func TestReceiveMalformed(t *testing.T) {
	hdr := func(serial int) string { return fmt.Sprintf("audit(1795452112.527:%d): ", serial) }
	d := func(typ auparse.AuditMessageType, s string) []byte { return datagram(uint16(typ), s) }
	good := func(serial int) [][]byte {
		return [][]byte{d(sc, hdr(serial)+recSetresuid), d(eoe, hdr(serial))}
	}
	cases := []struct {
		name   string
		grams  [][]byte
		errors uint64 // Stats.Errors
		events int    // besides the two good ones
	}{
		{"no header", [][]byte{d(sc, recSetresuid)}, 1, 0},
		{"header cut", [][]byte{d(sc, "audit(1795452112.527:3")}, 1, 0},
		{"bad serial", [][]byte{d(sc, "audit(1795452112.527:x3): "+recSetresuid)}, 1, 0},
		{"empty payload", [][]byte{d(sc, "")}, 1, 0},
		{"header only", [][]byte{d(sc, hdr(3)), d(eoe, hdr(3))}, 1, 0},
		{"record cut in a quote", [][]byte{d(sc, hdr(3)+recSetresuid[:len(recSetresuid)-20]), d(eoe, hdr(3))}, 1, 0},
		{"record cut in a field", [][]byte{d(sc, hdr(3)+recSetresuid[:40]), d(eoe, hdr(3))}, 1, 0},
		{"EXECVE without SYSCALL", [][]byte{d(exv, hdr(3)+recExecve), d(eoe, hdr(3))}, 0, 0},
		{"exec without EXECVE", [][]byte{d(sc, hdr(3)+recExecSyscall), d(eoe, hdr(3))}, 1, 1},
		{"two SYSCALL records", [][]byte{d(sc, hdr(3)+recSetresuid), d(sc, hdr(3)+recPrctl), d(eoe, hdr(3))}, 0, 1},
		{"EOE only", [][]byte{d(eoe, hdr(3))}, 0, 0},
		{"binary junk", [][]byte{d(sc, hdr(3)+"\x00\xff\x01=\"\x02"), d(eoe, hdr(3))}, 1, 0},
		{"netlink header only", [][]byte{datagram(uint16(sc), "")[:16]}, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{})
			sink := &recSink{}
			grams := good(2)
			grams = append(grams, tc.grams...)
			grams = append(grams, good(4)...)
			feed(t, s, sink, grams)
			evs := sink.snapshot()
			if st := s.Stats(); st.Errors != tc.errors || len(evs) != 2+tc.events {
				t.Errorf("%d events, %d errors; want %d and %d", len(evs), st.Errors, 2+tc.events, tc.errors)
			}
			if len(evs) < 2 || evs[0].PID != 13736 || evs[len(evs)-1].PID != 13736 || evs[len(evs)-1].Kind != process.EventUID {
				t.Errorf("the good events around it: %+v", evs)
			}
		})
	}
}

// TestReceiveEvicted: the records of an event that did not complete within
// the reassembly timeout are delivered as they are (here an exec without
// its EXECVE record: reported, with an error counted); its records that
// come after are dropped and counted in Stats.Errors, and the events
// behind it are not held back.
func TestReceiveEvicted(t *testing.T) {
	s := New(Config{ReassemblyTimeout: time.Second})
	sink := &recSink{}
	st := s.newStream(sink)
	hdr := func(serial int) string { return fmt.Sprintf("audit(1795452112.527:%d): ", serial) }
	t0 := time.Now()
	s.handle(st, datagram(uint16(sc), hdr(10)+recExecSyscall), t0)
	s.handle(st, datagram(uint16(sc), hdr(11)+recSetresuid), t0)
	s.handle(st, datagram(uint16(eoe), hdr(11)), t0)
	if n := len(sink.snapshot()); n != 0 {
		t.Fatalf("%d events delivered before the incomplete one", n)
	}
	later := t0.Add(2 * time.Second)
	st.group.cleanUp(later)
	evs := sink.snapshot()
	if len(evs) != 2 || evs[0].Kind != process.EventExec || evs[0].PID != 13733 || evs[1].Kind != process.EventUID {
		t.Fatalf("events after the timeout: %+v", evs)
	}
	errs := s.Stats().Errors // the exec without its EXECVE record
	s.handle(st, datagram(uint16(exv), hdr(10)+recExecve), later)
	s.handle(st, datagram(uint16(eoe), hdr(10)), later)
	st.group.flush()
	if got := s.Stats(); got.Errors != errs+1 || len(sink.snapshot()) != 2 || got.Events != 2 {
		t.Errorf("after the late EXECVE: %+v, %d events; want one more error and no event", got, len(sink.snapshot()))
	}
	if n := st.gaps.expire(later.Add(time.Hour), time.Second); n != 0 {
		t.Errorf("%d serials taken for lost", n)
	}
}

// FuzzReceive feeds arbitrary datagrams through the receive path, with
// serials that repeat, go back and evict: errors are fine, panics are
// not, and nothing stays in flight beyond the limit.
func FuzzReceive(f *testing.F) {
	f.Add([]byte("audit(1.2:3): "+recExecSyscall), []byte("audit(1.2:3): "+recExecve), uint16(sc), uint16(exv), uint8(3))
	f.Add([]byte("audit(1.2:3): "+recSeccomp), []byte("audit(1.2:4): "), uint16(auparse.AUDIT_SECCOMP), uint16(eoe), uint8(1))
	f.Add([]byte("audit(1.2:3"), []byte("\x00\xff"), uint16(sc), uint16(auparse.AUDIT_PATH), uint8(0))
	f.Fuzz(func(t *testing.T, b1, b2 []byte, t1, t2 uint16, n uint8) {
		s := New(Config{MaxInFlight: 2})
		st := s.newStream(&recSink{})
		now := time.Now()
		grams := [][]byte{datagram(t1, string(b1)), datagram(t2, string(b2)), datagram(t1, "audit(1.2:2): "+string(b2))}
		for i := range int(n % 8) {
			for _, g := range grams {
				s.handle(st, g, now.Add(time.Duration(i)*time.Second))
			}
			if len(st.group.inflight) > 2 {
				t.Fatalf("%d events in flight", len(st.group.inflight))
			}
		}
		st.group.flush()
	})
}
