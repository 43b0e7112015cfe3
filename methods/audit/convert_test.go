package audit

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/proctrack/proctrack/procmon/process"
)

// Records as this kernel (6.18, x86_64) writes them.
const (
	recExecSyscall = `arch=c000003e syscall=59 success=yes exit=0 a0=dd514bb6d60 a1=dd514c9c000 a2=dd514c7c280 a3=0 items=2 ppid=13717 pid=13733 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="true" exe="/usr/bin/true" key=70726F63747261636B0170726F63747261636B2D6F776E65723D64756D70`
	recExecFcaps   = `fver=0 fp=0 fi=0 fe=0 old_pp=000001fffeffffff old_pi=0 old_pe=000001fffeffffff old_pa=0 pp=000001fffeffffff pi=0 pe=000001fffeffffff pa=0 frootid=0`
	recExecve      = `argc=5 a0="/bin/true" a1=612062 a2=636166C3A9 a3=782279 a4=""`
	recCwd         = `cwd="/work/main/methods/audit"`
	recPath0       = `item=0 name="/bin/true" inode=247849 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`
	recPath1       = `item=1 name="/lib64/ld-linux-x86-64.so.2" inode=325835 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`
	recProctitle   = `proctitle=2F62696E2F747275650061206200636166C3A900782279`
	recExitGroup   = `arch=c000003e syscall=231 a0=3 a1=3c a2=0 a3=e7 items=0 ppid=13717 pid=13740 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="sh" exe="/usr/bin/dash" key=(null)`
	recSetresuid   = `arch=c000003e syscall=117 success=yes exit=0 a0=3e8 a1=3e8 a2=ffffffff a3=0 items=0 ppid=13717 pid=13736 auid=4294967295 uid=1000 gid=0 euid=1000 suid=1000 fsuid=1000 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="setpriv" exe="/usr/bin/setpriv" key="proctrack"`
	recCapsetSys   = `arch=c000003e syscall=126 success=yes exit=0 a0=7fc096226748 a1=7fc096226750 a2=7fc096227120 a3=43a1a7cfe281604f items=0 ppid=13717 pid=13736 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="setpriv" exe="/usr/bin/setpriv" key="proctrack"`
	recCapset      = `pid=13736 cap_pi=0000000000002000 cap_pp=000001fffeffffff cap_pe=000001fffeffffff cap_pa=0`
	recPrctl       = `arch=c000003e syscall=157 success=yes exit=0 a0=26 a1=1 a2=0 a3=0 items=0 ppid=13717 pid=13736 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="setpriv" exe="/usr/bin/setpriv" key="proctrack"`
	recSeize       = `arch=c000003e syscall=101 success=yes exit=0 a0=4206 a1=373a a2=0 a3=0 items=0 ppid=14119 pid=14137 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="strace" exe="/usr/bin/strace" key="proctrack"`
	recObjPID      = `opid=14138 oauid=-1 ouid=0 oses=-1 ocomm="strace"`
	recTraceme     = `arch=c000003e syscall=101 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=14137 pid=14139 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="strace" exe="/usr/bin/strace" key="proctrack"`
	recDetach      = `arch=c000003e syscall=101 success=yes exit=0 a0=11 a1=373a a2=0 a3=0 items=0 ppid=14119 pid=14137 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="strace" exe="/usr/bin/strace" key="proctrack"`
	recUnshare     = `arch=c000003e syscall=272 success=yes exit=0 a0=10000000 a1=0 a2=0 a3=0 items=0 ppid=13717 pid=13750 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="unshare" exe="/usr/bin/unshare" key="proctrack"`
	recUnshareNS   = `arch=c000003e syscall=272 success=yes exit=0 a0=20000 a1=0 a2=0 a3=0 items=0 ppid=13717 pid=13750 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="unshare" exe="/usr/bin/unshare" key=(null)`
	recClone       = `arch=c000003e syscall=56 success=yes exit=14200 a0=10004111 a1=0 a2=0 a3=0 items=0 ppid=13717 pid=14199 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="audit.test" exe="/tmp/audit.test" key="proctrack"`
	recSeccomp     = `auid=4294967295 uid=0 gid=0 ses=4294967295 pid=14143 comm="audit.test" exe="/tmp/go-build80282960/b001/audit.test" sig=0 arch=c000003e syscall=39 compat=0 ip=0x409c4e code=0x7ffc0000`
	recSetuid32    = `arch=40000003 syscall=213 success=yes exit=0 a0=3e8 a1=0 a2=0 a3=0 items=0 ppid=1 pid=200 auid=4294967295 uid=1000 gid=0 euid=1000 suid=1000 fsuid=1000 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="a.out" exe="/tmp/a b.out" key="proctrack"`
	recExecFailed  = `arch=c000003e syscall=59 success=no exit=-2 a0=1 a1=2 a2=3 a3=0 items=1 ppid=1 pid=300 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="x" exe="/usr/bin/x" key="proctrack"`
	recOpenat      = `arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=0 a3=0 items=1 ppid=1 pid=300 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="x" exe="/usr/bin/x" key="other"`
)

// rec is one record for msgs.
type rec = record

// msgs returns records as one event's, and its time.
func msgs(t testing.TB, recs ...rec) (time.Time, []record) {
	t.Helper()
	return time.Unix(1795452112, 527e6).UTC(), recs
}

func TestConvertExec(t *testing.T) {
	ev, err := convert(msgs(t,
		rec{auparse.AUDIT_SYSCALL, recExecSyscall}, rec{auparse.AUDIT_BPRM_FCAPS, recExecFcaps},
		rec{auparse.AUDIT_EXECVE, recExecve}, rec{auparse.AUDIT_CWD, recCwd},
		rec{auparse.AUDIT_PATH, recPath0}, rec{auparse.AUDIT_PATH, recPath1},
		rec{auparse.AUDIT_PROCTITLE, recProctitle}))
	if err != nil || ev == nil {
		t.Fatalf("convert: %v, %v", ev, err)
	}
	p := ev.Process
	want := []string{"/bin/true", "a b", "café", `x"y`, ""}
	if ev.Kind != process.EventExec || ev.PID != 13733 || ev.Method != process.MethodAudit ||
		p.ID != 13733 || p.PPID != 13717 || p.Comm != "true" || p.Path != "/usr/bin/true" ||
		p.CWD != "/work/main/methods/audit" || !slices.Equal(p.Args, want) || p.UID != 0 {
		t.Errorf("event %+v process %+v", ev, p)
	}
	if !ev.Time.Equal(time.Unix(1795452112, 527e6)) {
		t.Errorf("time %v", ev.Time)
	}
	if p.Creds.CapPermitted != 0x1fffeffffff || p.Creds.CapEffective != 0x1fffeffffff {
		t.Errorf("caps %+v", p.Creds)
	}
	sc := ev.Syscall
	if sc.Name != "execve" || sc.Number != 59 || sc.Arch != "x86_64" || sc.Result != 0 || sc.Args[0] != 0xdd514bb6d60 {
		t.Errorf("syscall %+v", sc)
	}
}

func TestConvertExecArgs(t *testing.T) {
	hex := func(s string) string { return strings.ToUpper(fmt.Sprintf("%x", s)) }
	cases := []struct {
		name  string
		recs  []string
		want  []string
		isErr bool
	}{
		{"pieces", []string{`argc=2 a0="x" a1_len=10 a1[0]=` + hex("ab c") + ` a1[1]="defghi"`}, []string{"x", "ab cdefghi"}, false},
		{"records", []string{`argc=3 a0="x" a1="y"`, `a2_len=4 a2[0]="zz"`, `a2[1]=` + hex("\x00\xff")}, []string{"x", "y", "zz\x00\xff"}, false},
		{"nul kept", []string{`argc=1 a0=` + hex("a\x00b")}, []string{"a\x00b"}, false},
		{"len mismatch", []string{`argc=1 a0_len=5 a0[0]="abc"`}, []string{"abc"}, true},
		{"missing arg", []string{`argc=3 a0="x" a2="z"`}, []string{"x"}, true},
		{"index out of range", []string{`argc=1 a0="x" a7="y"`}, []string{"x"}, true},
		{"bad hex", []string{`argc=2 a0="x" a1=4G`}, []string{"x"}, true},
		{"huge argc", []string{`argc=99999999999 a0="x"`}, nil, true},
		{"no argc", []string{`a0="x"`}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs := []rec{{auparse.AUDIT_SYSCALL, recExecSyscall}}
			for _, r := range tc.recs {
				recs = append(recs, rec{auparse.AUDIT_EXECVE, r})
			}
			ev, err := convert(msgs(t, recs...))
			if (err != nil) != tc.isErr {
				t.Errorf("error %v, want error %v", err, tc.isErr)
			}
			if ev == nil {
				t.Fatal("no event")
			}
			if !slices.Equal(ev.Process.Args, tc.want) {
				t.Errorf("args %q, want %q", ev.Process.Args, tc.want)
			}
		})
	}
}

func TestConvertKinds(t *testing.T) {
	cases := []struct {
		name  string
		recs  []rec
		check func(t *testing.T, ev *process.Event)
	}{
		{"exit_group", []rec{{auparse.AUDIT_SYSCALL, recExitGroup}}, func(t *testing.T, ev *process.Event) {
			if ev.Kind != process.EventExit || ev.PID != 13740 || ev.ExitCode != 3<<8 || ev.Syscall.Name != "exit_group" {
				t.Errorf("%+v", ev)
			}
		}},
		{"setresuid", []rec{{auparse.AUDIT_SYSCALL, recSetresuid}}, func(t *testing.T, ev *process.Event) {
			n := ev.Creds.New
			if ev.Kind != process.EventUID || n.UID != 1000 || n.EUID != 1000 || n.SUID != 1000 || n.FSUID != 1000 || ev.Process.UID != 1000 {
				t.Errorf("%+v %+v", ev, n)
			}
		}},
		{"setuid32", []rec{{auparse.AUDIT_SYSCALL, recSetuid32}}, func(t *testing.T, ev *process.Event) {
			if ev.Kind != process.EventUID || ev.Syscall.Arch != "i386" || ev.Syscall.Name != "setuid32" || ev.Process.Path != "/tmp/a b.out" {
				t.Errorf("%+v %+v", ev, ev.Syscall)
			}
		}},
		// An arm64 host's record: aarch64's numbers (setresuid is 147).
		{"aarch64 setresuid", []rec{{auparse.AUDIT_SYSCALL, strings.Replace(strings.Replace(recSetresuid, "arch=c000003e", "arch=c00000b7", 1), "syscall=117", "syscall=147", 1)}}, func(t *testing.T, ev *process.Event) {
			if ev.Kind != process.EventUID || ev.Syscall.Arch != "aarch64" || ev.Syscall.Name != "setresuid" || ev.Syscall.Number != 147 {
				t.Errorf("%+v %+v", ev, ev.Syscall)
			}
		}},
		{"capset", []rec{{auparse.AUDIT_SYSCALL, recCapsetSys}, {auparse.AUDIT_CAPSET, recCapset}}, func(t *testing.T, ev *process.Event) {
			n := ev.Creds.New
			if ev.Kind != process.EventCapset || n.CapInheritable != 1<<13 || n.CapPermitted != 0x1fffeffffff || n.CapAmbient != 0 {
				t.Errorf("%+v", n)
			}
		}},
		{"prctl", []rec{{auparse.AUDIT_SYSCALL, recPrctl}}, func(t *testing.T, ev *process.Event) {
			if ev.Kind != process.EventPrctl || !slices.Equal(ev.Syscall.Args, []uint64{38, 1, 0, 0}) {
				t.Errorf("%+v", ev.Syscall)
			}
		}},
		{"ptrace seize", []rec{{auparse.AUDIT_SYSCALL, recSeize}, {auparse.AUDIT_OBJ_PID, recObjPID}}, func(t *testing.T, ev *process.Event) {
			if ev.Kind != process.EventPtrace || ev.PID != 14138 || ev.Tracer != 14137 || ev.Process.ID != 14138 || ev.Process.Comm != "strace" {
				t.Errorf("%+v", ev)
			}
		}},
		{"ptrace seize without OBJ_PID", []rec{{auparse.AUDIT_SYSCALL, recSeize}}, func(t *testing.T, ev *process.Event) {
			if ev.PID != 0x373a || ev.Tracer != 14137 {
				t.Errorf("%+v", ev)
			}
		}},
		{"ptrace traceme", []rec{{auparse.AUDIT_SYSCALL, recTraceme}}, func(t *testing.T, ev *process.Event) {
			if ev.PID != 14139 || ev.Tracer != 14137 || ev.Process.ID != 14139 {
				t.Errorf("%+v", ev)
			}
		}},
		{"ptrace detach", []rec{{auparse.AUDIT_SYSCALL, recDetach}}, func(t *testing.T, ev *process.Event) {
			if ev.PID != 0x373a || ev.Tracer != 0 {
				t.Errorf("%+v", ev)
			}
		}},
		{"unshare", []rec{{auparse.AUDIT_SYSCALL, recUnshare}}, func(t *testing.T, ev *process.Event) {
			if ev.Kind != process.EventUserNS || ev.PID != 13750 || ev.Syscall.Name != "unshare" {
				t.Errorf("%+v", ev)
			}
		}},
		{"clone", []rec{{auparse.AUDIT_SYSCALL, recClone}}, func(t *testing.T, ev *process.Event) {
			if ev.Kind != process.EventUserNS || ev.PID != 14200 || ev.PPID != 14199 || ev.Process.ID != 14200 || ev.Process.PPID != 14199 {
				t.Errorf("%+v", ev)
			}
		}},
		{"seccomp", []rec{{auparse.AUDIT_SECCOMP, recSeccomp}}, func(t *testing.T, ev *process.Event) {
			sc := ev.Syscall
			if ev.Kind != process.EventSeccomp || ev.PID != 14143 || sc.Name != "getpid" || sc.Number != 39 ||
				sc.Arch != "x86_64" || sc.SeccompAction != "log" || ev.Process.Comm != "audit.test" ||
				ev.Process.Path != "/tmp/go-build80282960/b001/audit.test" {
				t.Errorf("%+v %+v", ev, sc)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := convert(msgs(t, tc.recs...))
			if err != nil || ev == nil {
				t.Fatalf("convert: %v, %v", ev, err)
			}
			if ev.Method != process.MethodAudit || ev.Time.IsZero() {
				t.Errorf("method %q time %v", ev.Method, ev.Time)
			}
			tc.check(t, ev)
		})
	}
}

// TestConvertIgnored lists events that are not reported, without error.
func TestConvertIgnored(t *testing.T) {
	for name, recs := range map[string][]rec{
		"failed exec":      {{auparse.AUDIT_SYSCALL, recExecFailed}},
		"other syscall":    {{auparse.AUDIT_SYSCALL, recOpenat}},
		"unshare other ns": {{auparse.AUDIT_SYSCALL, recUnshareNS}},
		"proctitle only":   {{auparse.AUDIT_PROCTITLE, recProctitle}},
		"config change":    {{auparse.AUDIT_CONFIG_CHANGE, `auid=4294967295 ses=4294967295 op=add_rule key="proctrack" list=4 res=1`}},
		"nothing":          {},
	} {
		ev, err := convert(msgs(t, recs...))
		if ev != nil || err != nil {
			t.Errorf("%s: %+v, %v", name, ev, err)
		}
	}
}

func TestSeccompActionName(t *testing.T) {
	for code, want := range map[uint32]string{
		0x80000000: "kill_process", 0: "kill_thread", 0x00030000: "trap", 0x00050001: "errno",
		0x7fc00000: "user_notif", 0x7ff00000: "trace", 0x7ffc0000: "log", 0x7fff0000: "allow",
		0x12340000: "unknown(0x12340000)",
	} {
		if got := SeccompActionName(code); got != want {
			t.Errorf("%#x: %q, want %q", code, got, want)
		}
	}
}

// garbled are damaged records: each is an error, never a panic.
var garbled = []rec{
	{auparse.AUDIT_SYSCALL, `syscall=59 success=yes pid=1`},                                                // no arch
	{auparse.AUDIT_SYSCALL, `arch=zz syscall=59 success=yes pid=1`},                                        // bad arch
	{auparse.AUDIT_SYSCALL, `arch=c000003e success=yes pid=1`},                                             // no syscall
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=-5 success=yes pid=1`},                                  // bad syscall
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=59 success=yes pid=0`},                                  // bad pid
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=59 success=yes pid=12x`},                                // bad pid
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=59 success=yes pid=1 uid=-3`},                           // bad uid
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=59 success=yes pid=1 a0=xyz`},                           // bad arg
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=59 success=yes pid=1 exit=ten`},                         // bad exit
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=59 success=yes pid=1 comm="unterminated`},               // open quote
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=59 success=yes pid=1 comm=ABC`},                         // odd hex
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=56 success=yes exit=-1 pid=1 a0=10000000`},              // clone result
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=126 success=yes pid=1`},                                 // capset without CAPSET
	{auparse.AUDIT_SECCOMP, `pid=1 arch=c000003e syscall=39`},                                              // no code
	{auparse.AUDIT_SECCOMP, `pid=1 arch=c000003e syscall=39 code=0x1ffffffff`},                             // bad code
	{auparse.AUDIT_SECCOMP, `pid=-1 arch=c000003e syscall=39 code=0x7ffc0000`},                             // bad pid
	{auparse.AUDIT_SECCOMP, `pid=1 syscall=39 code=0x7ffc0000`},                                            // no arch
	{auparse.AUDIT_SECCOMP, `pid=1 arch=c000003e code=0x7ffc0000`},                                         // no syscall
	{auparse.AUDIT_SECCOMP, `pid=1 arch=c000003e syscall=39 code=0x7ffc0000 comm=Z1`},                      // bad comm
	{auparse.AUDIT_SECCOMP, `pid=1 arch=c000003e syscall=39 code=0x7ffc0000 exe="`},                        // open quote
	{auparse.AUDIT_SECCOMP, `pid=1 arch=c000003e syscall=39 code=0x7ffc0000 uid=x gid=y`},                  // bad ids
	{auparse.AUDIT_SYSCALL, `arch=c000003e syscall=59 success=yes pid=99999999999`},                        // pid too big
	{auparse.AUDIT_SYSCALL, "arch=c000003e syscall=101 success=yes pid=1 a0=10 a1=5 comm=\"\x00\xff=\x01"}, // junk
}

func TestConvertGarbled(t *testing.T) {
	for i, r := range garbled {
		ev, err := convert(msgs(t, r))
		if err == nil {
			t.Errorf("%d %q: no error (event %+v)", i, r.body, ev)
		}
	}
	// Damaged companions of a good SYSCALL record: the event survives.
	ev, err := convert(msgs(t, rec{auparse.AUDIT_SYSCALL, recSeize}, rec{auparse.AUDIT_OBJ_PID, `opid=x ocomm=Q`}))
	if err == nil || ev == nil || ev.PID != 0x373a {
		t.Errorf("ptrace with a bad OBJ_PID: %+v, %v", ev, err)
	}
	ev, err = convert(msgs(t, rec{auparse.AUDIT_SYSCALL, recExecSyscall}, rec{auparse.AUDIT_CWD, `cwd="`}, rec{auparse.AUDIT_EXECVE, `argc=1 a0="x"`}))
	if err == nil || ev == nil || !slices.Equal(ev.Process.Args, []string{"x"}) {
		t.Errorf("exec with a bad CWD: %+v, %v", ev, err)
	}
}

// datagram is a netlink message as the kernel sends it.
func datagram(typ uint16, data string) []byte {
	b := make([]byte, 16+len(data))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	copy(b[16:], data)
	return b
}

// feed runs datagrams through a Source's receive path (grouping and
// conversion) into sink, as the reader goroutine does, then delivers what
// is still in flight, as the reader does when it stops.
func feed(t testing.TB, s *Source, sink *recSink, grams [][]byte) *stream {
	st := s.newStream(sink)
	now := time.Now()
	for _, g := range grams {
		s.handle(st, g, now)
	}
	st.group.flush()
	return st
}

// TestReceivePath feeds datagrams through the reassembler: a seccomp record
// does not hold back the next event, malformed ones are counted, control
// messages are skipped.
func TestReceivePath(t *testing.T) {
	s := New(Config{})
	sink := &recSink{}
	hdr := func(serial int) string { return "audit(1795452112.527:" + strconv.Itoa(serial) + "): " }
	grams := [][]byte{
		datagram(uint16(auparse.AUDIT_SECCOMP), hdr(10)+recSeccomp),
		datagram(uint16(auparse.AUDIT_SYSCALL), hdr(11)+recSetresuid),
		datagram(uint16(auparse.AUDIT_PROCTITLE), hdr(11)+recProctitle),
		datagram(uint16(auparse.AUDIT_EOE), hdr(11)),
		datagram(uint16(auparse.AUDIT_SYSCALL), "garbage without a header"),
		datagram(uint16(auparse.AUDIT_REPLACE), "\x01\x02\x03\x04"),
		datagram(2, "\x00\x00\x00\x00"), // NLMSG_ERROR
		datagram(uint16(auparse.AUDIT_SYSCALL), hdr(12)+`arch=c000003e syscall=59 success=yes pid=0`),
		datagram(uint16(auparse.AUDIT_EOE), hdr(12)),
	}
	feed(t, s, sink, grams)
	evs := sink.snapshot()
	if len(evs) != 2 || evs[0].Kind != process.EventSeccomp || evs[1].Kind != process.EventUID {
		t.Fatalf("events %+v", evs)
	}
	if st := s.Stats(); st.Errors != 2 || st.Events != 2 || st.Lost != 0 {
		t.Errorf("stats %+v, want 2 events and 2 errors", st)
	}
	// A gap in the serials is a loss once it has lasted; an event that
	// comes late is not, nor is a late record of a delivered event.
	s = New(Config{})
	sink = &recSink{}
	st := feed(t, s, sink, [][]byte{
		datagram(uint16(auparse.AUDIT_SYSCALL), hdr(20)+recSetresuid),
		datagram(uint16(auparse.AUDIT_PROCTITLE), hdr(20)+recProctitle),
		datagram(uint16(auparse.AUDIT_SYSCALL), hdr(25)+recSetresuid),
		datagram(uint16(auparse.AUDIT_PROCTITLE), hdr(25)+recProctitle),
		datagram(uint16(auparse.AUDIT_SYSCALL), hdr(22)+recSetresuid), // late
		datagram(uint16(auparse.AUDIT_PROCTITLE), hdr(22)+recProctitle),
		datagram(uint16(auparse.AUDIT_PROCTITLE), hdr(20)+recProctitle), // late record
	})
	if len(sink.snapshot()) != 3 {
		t.Errorf("%d events, want 3", len(sink.snapshot()))
	}
	st.expireGaps(time.Now(), time.Hour)
	if s.Stats().Lost != 0 {
		t.Errorf("lost reported before the gap aged: %+v", s.Stats())
	}
	st.expireGaps(time.Now().Add(2*time.Hour), time.Hour)
	if got := s.Stats(); got.Lost != 3 || got.LostTimes != 1 || sink.lost != 3 || s.Status().SequenceGaps != 3 {
		t.Errorf("stats %+v, sink lost %d: want 3 (serials 21, 23, 24) lost once", got, sink.lost)
	}
}

// TestStandaloneRecord checks that a record written outside a system call
// (no end-of-event record follows) does not hold back the next event.
func TestStandaloneRecord(t *testing.T) {
	s := New(Config{ReassemblyTimeout: time.Hour})
	sink := &recSink{}
	st := s.newStream(sink)
	for _, g := range [][]byte{
		datagram(uint16(auparse.AUDIT_CONFIG_CHANGE), "audit(1.5:7): op=add_rule key=\"proctrack\" list=4 res=1"),
		datagram(uint16(auparse.AUDIT_SECCOMP), "audit(1.5:8): "+recSeccomp),
		datagram(uint16(auparse.AUDIT_AVC), "audit(1.5:9): apparmor=\"DENIED\" operation=\"open\""),
		datagram(uint16(auparse.AUDIT_SYSCALL), "audit(1.5:10): "+recSetresuid),
		datagram(uint16(auparse.AUDIT_PROCTITLE), "audit(1.5:10): "+recProctitle),
		datagram(uint16(auparse.AUDIT_EOE), "audit(1.5:10): "),
	} {
		s.handle(st, g, time.Now())
	}
	if evs := sink.snapshot(); len(evs) != 2 || evs[0].Kind != process.EventSeccomp || evs[1].Kind != process.EventUID {
		t.Errorf("events before the timeout: %+v", evs)
	}
	if n := st.gaps.expire(time.Now().Add(time.Hour), time.Second); n != 0 {
		t.Errorf("%d serials taken for lost", n)
	}
}

func TestGapTracker(t *testing.T) {
	var g gapTracker
	now := time.Now()
	g.seen(0xfffffffe, now)
	g.seen(1, now) // wraps: 0xffffffff and 0 missing
	g.seen(0, now)
	if n := g.expire(now.Add(time.Minute), time.Second); n != 1 {
		t.Errorf("after a wrap: %d lost, want 1", n)
	}
	g.seen(1+maxPendingGaps+10, now) // too many to wait for
	if n := g.expire(now, time.Second); n != maxPendingGaps+9 {
		t.Errorf("huge gap: %d lost now, want %d", n, maxPendingGaps+9)
	}
}

// FuzzConvert feeds arbitrary records to the conversion and to the receive
// path: errors are fine, panics are not.
func FuzzConvert(f *testing.F) {
	for _, r := range []string{recExecSyscall, recExecve, recCwd, recPath0, recCapset, recObjPID, recSeccomp, recExitGroup} {
		f.Add(uint16(auparse.AUDIT_SYSCALL), r, uint16(auparse.AUDIT_EXECVE), recExecve)
	}
	f.Add(uint16(auparse.AUDIT_SECCOMP), recSeccomp, uint16(auparse.AUDIT_SYSCALL), recPrctl)
	f.Add(uint16(auparse.AUDIT_SYSCALL), recSeize, uint16(auparse.AUDIT_OBJ_PID), recObjPID)
	f.Add(uint16(auparse.AUDIT_SYSCALL), recCapsetSys, uint16(auparse.AUDIT_CAPSET), recCapset)
	f.Add(uint16(auparse.AUDIT_SYSCALL), recExecSyscall, uint16(auparse.AUDIT_EXECVE), `argc=2 a0="x" a1_len=4 a1[0]=4142 a1[1]="cd"`)
	for _, g := range garbled {
		f.Add(uint16(g.typ), g.body, uint16(auparse.AUDIT_EOE), "")
	}
	f.Fuzz(func(t *testing.T, t1 uint16, b1 string, t2 uint16, b2 string) {
		ev, _ := convert(time.Unix(1, 2e6), []rec{{auparse.AuditMessageType(t1), b1}, {auparse.AuditMessageType(t2), b2}})
		if ev != nil && (ev.Method != process.MethodAudit || ev.Kind == process.EventUnknown) {
			t.Errorf("bad event %+v", ev)
		}
		s := New(Config{})
		feed(t, s, &recSink{}, [][]byte{
			datagram(t1, "audit(1.2:3): "+b1), datagram(t2, "audit(1.2:3): "+b2),
			datagram(t1, b1), datagram(t2, b2)[:min(16, len(b2)+16)],
		})
	})
}

// TestReceivePathSkipsLaterPaths: only the PATH record of item 0 (an
// exec's file) is parsed; those of later items (its interpreter) are
// skipped unparsed, and a damaged one costs nothing.
func TestReceivePathSkipsLaterPaths(t *testing.T) {
	s := New(Config{})
	sink := &recSink{}
	hdr := "audit(1795452112.527:30): "
	feed(t, s, sink, [][]byte{
		datagram(uint16(auparse.AUDIT_SYSCALL), hdr+strings.Replace(recExecSyscall, ` exe="/usr/bin/true"`, "", 1)),
		datagram(uint16(auparse.AUDIT_EXECVE), hdr+recExecve),
		datagram(uint16(auparse.AUDIT_CWD), hdr+recCwd),
		datagram(uint16(auparse.AUDIT_PATH), hdr+recPath0),
		datagram(uint16(auparse.AUDIT_PATH), hdr+`item=1 name="/lib64/ld-linux-x86-64.so.2 inode=1`),
		datagram(uint16(auparse.AUDIT_EOE), hdr),
	})
	evs := sink.snapshot()
	if len(evs) != 1 || evs[0].Kind != process.EventExec || evs[0].Process.Path != "/bin/true" {
		t.Fatalf("events %+v, want the exec of /bin/true (its PATH item 0)", evs)
	}
	if st := s.Stats(); st.Errors != 0 {
		t.Errorf("%d errors: the PATH record of item 1 was parsed", st.Errors)
	}
}
