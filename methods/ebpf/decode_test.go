package ebpf

import (
	"errors"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/btf"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// bytesOf returns the memory of a record (a copy, with extra appended).
func bytesOf[T any](rec *T, size int, extra []byte) []byte {
	b := unsafe.Slice((*byte)(unsafe.Pointer(rec)), size)
	return append(append([]byte(nil), b...), extra...)
}

func testDecoder() *decoder {
	return &decoder{boot: time.Unix(1_700_000_000, 0), proc: procfs.NewReader("/nonexistent"), c: &counters{}}
}

func comm(s string) (c [16]int8) {
	for i := range min(len(s), 15) {
		c[i] = int8(s[i])
	}
	return c
}

func TestJoinComponents(t *testing.T) {
	for in, want := range map[string]string{
		"true\x00bin\x00usr\x00": "/usr/bin/true",
		"":                       "/",
		"memfd:x\x00":            "/memfd:x",
		"a b\x00dir\x00":         "/dir/a b",
	} {
		if got := joinComponents([]byte(in)); got != want {
			t.Errorf("joinComponents(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeProcRecord(t *testing.T) {
	d := testDecoder()
	var r bpf.ProcmonProcRec
	r.H = bpf.ProcmonRecHdr{Kind: recExec, Ktime: 5e9, Pid: 42, Tid: 42, Ppid: 1, StartNs: 123_456_789_012, Comm: comm("true")}
	r.C = bpf.ProcmonCredsRec{Uid: 1000, Euid: 1001, Suid: 1002, Fsuid: 1003, Gid: 5, Egid: 6, Sgid: 7, Fsgid: 8,
		CapEff: 1 << 21, CapBnd: 1<<41 - 1, UserNs: 0xEFFFFFFD, Ngroups: 2, NoNewPrivs: 1, Seccomp: 2}
	r.C.Groups[0], r.C.Groups[1] = 10, 20
	r.ExeDev = 8<<20 | 1 // 8:1
	r.ExeIno = 777
	r.NsMnt, r.NsPid = 11, 12
	path, args, cwd := "true\x00bin\x00usr\x00", "/bin/true\x00a b\x00\x00", "tmp\x00"
	r.PathLen, r.ArgsLen, r.CwdLen = uint16(len(path)), uint16(len(args)), uint16(len(cwd))
	r.H.Flags = fIMA | fExeUnlinked
	r.ImaAlgo = 4 // sha256
	r.Ima[0], r.Ima[31] = 0xab, 0xcd
	raw := bytesOf(&r, procSize, []byte(path+args+cwd))
	ev, err := d.decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := ev.Process
	if ev.Kind != process.EventExec || ev.PID != 42 || ev.PPID != 1 || ev.Method != process.MethodEbpf ||
		!ev.Time.Equal(d.boot.Add(5*time.Second)) {
		t.Errorf("event %+v", ev)
	}
	if p.ID != 42 || p.PPID != 1 || p.Starttime != 12345 || !p.StartedAt.Equal(d.boot.Add(123450*time.Millisecond)) ||
		p.Comm != "true" || p.Path != "/usr/bin/true" || p.RealPath != p.Path || p.CWD != "/tmp" ||
		!slices.Equal(p.Args, []string{"/bin/true", "a b", ""}) || p.Incomplete || !p.ExeDeleted ||
		p.ExeInode != 777 || p.ExeDev != 8<<8|1 || p.NS.Mnt != 11 || p.NS.PID != 12 || p.NS.User != 0xEFFFFFFD {
		t.Errorf("process %+v", p)
	}
	c := p.Creds
	if c.UID != 1000 || c.EUID != 1001 || c.SUID != 1002 || c.FSUID != 1003 || c.GID != 5 || c.EGID != 6 ||
		c.SGID != 7 || c.FSGID != 8 || !slices.Equal(c.Groups, []uint32{10, 20}) || c.CapEffective != 1<<21 ||
		c.CapBounding != 1<<41-1 || !c.NoNewPrivs || c.Seccomp != 2 || !c.InHostUserNS() || p.UID != 1001 {
		t.Errorf("creds %+v", c)
	}
	if got := p.Checksums[process.HashIMA]; got != "sha256:ab000000000000000000000000000000000000000000000000000000000000cd" {
		t.Errorf("ima %q", got)
	}

	// A kernel thread.
	r.H.Kind, r.H.Flags, r.PathLen, r.ArgsLen, r.CwdLen = recFork, fKthread|fNoMM, 0, 0, 0
	ev, err = d.decode(bytesOf(&r, procSize, nil))
	if err != nil || ev.Kind != process.EventFork || !ev.Process.KernelThread || ev.Process.Path != process.KernelConnection || ev.Process.Args != nil {
		t.Errorf("kthread: %v %+v", err, ev.Process)
	}

	// Cut fields without /proc: Incomplete, counted.
	r.H.Kind, r.H.Flags = recExec, fArgsTrunc|fPathTrunc|fGroupsTrunc
	r.PathLen, r.ArgsLen, r.CwdLen = uint16(len(path)), uint16(len(args)), uint16(len(cwd))
	ev, err = d.decode(bytesOf(&r, procSize, []byte(path+args+cwd)))
	if err != nil || !ev.Process.Incomplete || ev.Process.Path != "" || len(ev.Process.Args) != 3 {
		t.Errorf("cut: %v %+v", err, ev.Process)
	}
	if d.c.argsCut.Load() != 1 || d.c.pathCut.Load() != 1 || d.c.incomplete.Load() != 1 {
		t.Errorf("counters %+v", d.c)
	}

	// Lengths beyond the record.
	r.PathLen = 60000
	if _, err := d.decode(bytesOf(&r, procSize, nil)); !errors.Is(err, errMalformed) {
		t.Errorf("bad lengths: %v", err)
	}
	if _, err := d.decode([]byte{1, 2, 3}); !errors.Is(err, errMalformed) {
		t.Errorf("short: %v", err)
	}
}

func TestDecodeSyscallAndLSM(t *testing.T) {
	d := testDecoder()
	var s bpf.ProcmonSysRec
	s.H = bpf.ProcmonRecHdr{Kind: recSyscall, Pid: 7, Tid: 8, Ppid: 3, StartNs: 1e9, Flags: fCompat}
	s.Nr, s.Code, s.Ret = 213, uint32(sysSetuid), 0
	s.Args[0] = 1000
	s.C.Uid, s.C.Euid = 1000, 1000
	ev, err := d.decode(bytesOf(&s, sysSize, nil))
	if err != nil || ev.Kind != process.EventUID || ev.PID != 7 || ev.TID != 8 || ev.Syscall.Name != "setuid32" ||
		ev.Syscall.Arch != "i386" || ev.Creds.New.UID != 1000 || len(ev.Syscall.Args) != 6 {
		t.Errorf("compat setuid32: %v %+v %+v", err, ev, ev.Syscall)
	}
	s.H.Flags, s.Nr, s.Code = 0, 101, uint32(sysPtrace)
	s.Args[0], s.Args[1] = ptraceSeize, 99
	ev, _ = d.decode(bytesOf(&s, sysSize, nil))
	if ev.Kind != process.EventPtrace || ev.PID != 99 || ev.Tracer != 7 || ev.Syscall.Name != "ptrace" {
		t.Errorf("ptrace seize: %+v", ev)
	}
	s.Args[0] = ptraceTraceme
	ev, _ = d.decode(bytesOf(&s, sysSize, nil))
	if ev.PID != 7 || ev.Tracer != 3 {
		t.Errorf("ptrace traceme: %+v", ev)
	}

	var l bpf.ProcmonLsmRec
	l.H = bpf.ProcmonRecHdr{Kind: recLSM, Pid: 7, Tid: 7}
	l.Hook = hookSetuid
	l.OldC.Uid, l.NewC.Uid = 0, 1000
	ev, err = d.decode(bytesOf(&l, lsmSize, nil))
	if err != nil || ev.Kind != process.EventUID || ev.Creds.Old.UID != 0 || ev.Creds.New.UID != 1000 || ev.Syscall != nil {
		t.Errorf("lsm setuid: %v %+v", err, ev)
	}
	l.Hook, l.TargetPid = hookPtrace, 55
	ev, _ = d.decode(bytesOf(&l, lsmSize, nil))
	if ev.Kind != process.EventPtrace || ev.PID != 55 || ev.Tracer != 7 {
		t.Errorf("lsm ptrace: %+v", ev)
	}
	l.Hook, l.Args[0] = hookPrctl, 38
	ev, _ = d.decode(bytesOf(&l, lsmSize, nil))
	if ev.Kind != process.EventPrctl || ev.Syscall == nil || ev.Syscall.Args[0] != 38 {
		t.Errorf("lsm prctl: %+v", ev)
	}
	for hook, kind := range map[uint32]process.EventKind{hookSetgid: process.EventGID, hookCapset: process.EventCapset, hookUserNS: process.EventUserNS} {
		l.Hook = hook
		if ev, _ := d.decode(bytesOf(&l, lsmSize, nil)); ev.Kind != kind {
			t.Errorf("hook %d: kind %v", hook, ev.Kind)
		}
	}
	l.Hook = 99
	if _, err := d.decode(bytesOf(&l, lsmSize, nil)); !errors.Is(err, errMalformed) {
		t.Errorf("unknown hook: %v", err)
	}
}

// TestDecodeRuleAnswers checks the kernel's rule answers in LSM and exec
// records: matched rules by name, the verdict, a denied exec attempt, the
// setid flags, prctl's option and ptrace's mode.
func TestDecodeRuleAnswers(t *testing.T) {
	d := testDecoder()
	set := ruleSet(t,
		rules.Spec{Hook: HookSetuid, Name: "A", Event: "uid == 1"},
		rules.Spec{Hook: HookSetuid, Name: "B", Event: "uid == 2"},
		rules.Spec{Hook: HookBprmCheck, Name: "C", Event: `path_prefix == "/usr"`})
	tables, err := compileRules(set, map[string]SandboxMode{HookSetuid: SandboxDenyList}, AllHooks())
	if err != nil {
		t.Fatal(err)
	}
	d.rules = tables

	var l bpf.ProcmonLsmRec
	l.H = bpf.ProcmonRecHdr{Kind: recLSM, Pid: 7, Tid: 7, Ppid: 1}
	l.Hook, l.Rules, l.Matched, l.Scoped, l.Verdict = hookSetuid, 1, 0b10, 0b11, verdictDeny
	l.Args[0] = uint64(process.SetIDRES)
	ev, err := d.decode(bytesOf(&l, lsmSize, nil))
	if err != nil || ev.Verdict != process.VerdictDenied || !ev.MatchedInKernel || !slices.Equal(ev.Matched, []string{"B"}) ||
		ev.Creds.Flags != process.SetIDRES || ev.Creds.Flags.String() != "LSM_SETID_RES" {
		t.Errorf("denied setuid: %v %+v", err, ev)
	}
	if ev.CacheOnly {
		t.Error("a denied setuid marked CacheOnly")
	}
	// an allow-list denial names the rules whose scope covered it
	l.Matched, l.Scoped = 0, 0b01
	if ev, _ := d.decode(bytesOf(&l, lsmSize, nil)); !slices.Equal(ev.Matched, []string{"A"}) || ev.CacheOnly {
		t.Errorf("allow-list denial names %q, cache only %v", ev.Matched, ev.CacheOnly)
	}
	// an allowed setuid no rule matched: sent for the cache only
	l.Matched, l.Scoped, l.Verdict = 0, 0, verdictAllow
	l.NewC.Uid = 1000
	if ev, _ := d.decode(bytesOf(&l, lsmSize, nil)); !ev.CacheOnly || len(ev.Matched) != 0 || ev.Creds.New.UID != 1000 {
		t.Errorf("unmatched setuid: cache only %v, matched %q, creds %+v", ev.CacheOnly, ev.Matched, ev.Creds)
	}
	l.NewC.Uid, l.Verdict = 0, verdictDeny
	// a denied exec attempt
	l.Hook, l.Matched, l.Scoped, l.BprmFlags = hookBprm, 0, 1, bprmSetuid|bprmRules
	for i, c := range "/tmp/x" {
		l.Path[i] = int8(c)
	}
	ev, _ = d.decode(bytesOf(&l, lsmSize, nil))
	if ev.Kind != process.EventExec || ev.Verdict != process.VerdictDenied || ev.Bprm == nil || ev.Bprm.Path != "/tmp/x" ||
		!ev.Bprm.Setuid || ev.Bprm.Setgid || !slices.Equal(ev.Matched, []string{"C"}) || ev.PPID != 1 {
		t.Errorf("denied exec: %+v %+v", ev, ev.Bprm)
	}
	// prctl and ptrace details; no rules evaluated
	l = bpf.ProcmonLsmRec{H: l.H, Hook: hookPrctl}
	l.Args[0], l.Args[1] = 15, 0x1234
	ev, _ = d.decode(bytesOf(&l, lsmSize, nil))
	if ev.Prctl == nil || ev.Prctl.Name != "PR_SET_NAME" || ev.Prctl.Args[0] != 0x1234 || ev.MatchedInKernel || ev.Verdict != process.VerdictNone {
		t.Errorf("prctl: %+v %+v", ev, ev.Prctl)
	}
	l.Hook, l.Args[0], l.TargetPid = hookPtrace, process.PtraceModeAttach|process.PtraceModeRealCreds, 9
	if ev, _ := d.decode(bytesOf(&l, lsmSize, nil)); ev.PtraceMode != process.PtraceModeAttach|process.PtraceModeRealCreds || ev.PID != 9 {
		t.Errorf("ptrace: %+v", ev)
	}
}

// TestRecordLayout checks that the Go types bpf2go generated have the C
// layout the decoder relies on.
func TestRecordLayout(t *testing.T) {
	spec, err := bpf.LoadProcmon()
	if err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int{"rec_hdr": hdrSize, "proc_rec": procSize, "exit_rec": exitSize,
		"sys_rec": sysSize, "lsm_rec": lsmSize} {
		var s *btf.Struct
		if err := spec.Types.TypeByName(name, &s); err != nil {
			t.Fatal(err)
		}
		if int(s.Size) != size {
			t.Errorf("struct %s: %d bytes in C, the decoder reads %d", name, s.Size, size)
		}
	}
	if off := unsafe.Offsetof(bpf.ProcmonProcRec{}.Ima); off+64 != uintptr(procSize) {
		t.Errorf("proc_rec.ima at %d", off)
	}
}

func BenchmarkDecodeExec(b *testing.B) {
	d := testDecoder()
	var r bpf.ProcmonProcRec
	r.H = bpf.ProcmonRecHdr{Kind: recExec, Pid: 42, Tid: 42, Ppid: 1, StartNs: 123_456_789_012, Comm: comm("true")}
	path, args, cwd := "true\x00bin\x00usr\x00", "/bin/true\x00tag-1234\x00", "tmp\x00"
	r.PathLen, r.ArgsLen, r.CwdLen = uint16(len(path)), uint16(len(args)), uint16(len(cwd))
	raw := bytesOf(&r, procSize, []byte(path+args+cwd))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
