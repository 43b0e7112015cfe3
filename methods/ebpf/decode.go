package ebpf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/procmon/process"
)

// Record kinds and flags of bpf/procmon.h.
const (
	recExec    = 1
	recFork    = 2
	recExit    = 3
	recSyscall = 4
	recLSM     = 5
	recKinds   = 6

	fPathTrunc    = 1 << 0
	fPathErr      = 1 << 1
	fArgsTrunc    = 1 << 2
	fArgsErr      = 1 << 3
	fCwdTrunc     = 1 << 4
	fCwdErr       = 1 << 5
	fGroupsTrunc  = 1 << 6
	fKthread      = 1 << 7
	fExeUnlinked  = 1 << 8
	fNoMM         = 1 << 9
	fIMA          = 1 << 10
	fCompat       = 1 << 11
	fNoCwd        = 1 << 12
	hookSetuid    = 1
	hookSetgid    = 2
	hookCapset    = 3
	hookPrctl     = 4
	hookUserNS    = 5
	hookPtrace    = 6
	hookBprm      = 7
	hookExec      = 8
	fBprm         = 1 << 13
	fExecRules    = 1 << 14
	nsPerTick     = 1e9 / procfs.UserHZ // start_boottime ns per /proc tick
	deletedSuffix = " (deleted)"
)

// Record sizes, from the types bpf2go generated from the C structs.
var (
	hdrSize  = int(unsafe.Sizeof(bpf.ProcmonRecHdr{}))
	procSize = int(unsafe.Offsetof(bpf.ProcmonProcRec{}.Data)) // the C size: Go pads the zero-length Data
	exitSize = int(unsafe.Sizeof(bpf.ProcmonExitRec{}))
	sysSize  = int(unsafe.Sizeof(bpf.ProcmonSysRec{}))
	lsmSize  = int(unsafe.Sizeof(bpf.ProcmonLsmRec{}))
)

// errMalformed is matched by the errors of records that cannot be decoded.
var errMalformed = errors.New("malformed record")

// decoder turns ring buffer records into events. It is used by the reader
// goroutine only.
type decoder struct {
	boot     time.Time // the instant start ticks and ktime count from
	complete bool      // read /proc to complete cut records
	proc     *procfs.Reader
	cgroups  *cgroupCache
	hostMnt  uint64 // this process's mount namespace
	c        *counters
	aligned  []uint64    // an 8-byte aligned copy of a record, when needed
	rules    *ruleTables // the rules in the kernel (LSM tier), for their names
	bprm     bool        // the bprm_check hook is on: exec events carry Event.Bprm
	log      *slog.Logger
}

// decode returns the event of a record, or nil for a record that makes no
// event.
func (d *decoder) decode(raw []byte) (*process.Event, error) {
	if len(raw) < hdrSize {
		return nil, fmt.Errorf("%w: %d bytes", errMalformed, len(raw))
	}
	if uintptr(unsafe.Pointer(&raw[0]))%8 != 0 {
		raw = d.align(raw)
	}
	h := (*bpf.ProcmonRecHdr)(unsafe.Pointer(&raw[0]))
	switch h.Kind {
	case recExec, recFork:
		return d.procRecord(raw)
	case recExit:
		return d.exit(raw)
	case recSyscall:
		return d.syscall(raw)
	case recLSM:
		return d.lsm(raw)
	}
	return nil, fmt.Errorf("%w: kind %d", errMalformed, h.Kind)
}

// align copies raw into an 8-byte aligned buffer.
func (d *decoder) align(raw []byte) []byte {
	n := (len(raw) + 7) / 8
	if cap(d.aligned) < n {
		d.aligned = make([]uint64, n)
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&d.aligned[:n][0])), n*8)
	copy(b, raw)
	return b[:len(raw)]
}

// event returns an event with the header's fields.
func (d *decoder) event(kind process.EventKind, h *bpf.ProcmonRecHdr) *process.Event {
	return &process.Event{
		Kind:   kind,
		Time:   d.boot.Add(time.Duration(h.Ktime)),
		Method: process.MethodEbpf,
		PID:    int(h.Pid),
		TID:    int(h.Tid),
	}
}

// identity returns a Process with the header's identity.
func (d *decoder) identity(h *bpf.ProcmonRecHdr) *process.Process {
	ticks := h.StartNs / nsPerTick
	return &process.Process{
		ID:        int(h.Pid),
		PPID:      int(h.Ppid),
		Starttime: int64(ticks),
		StartedAt: procfs.TicksToTime(d.boot, ticks),
		Comm:      cString(h.Comm[:]),
	}
}

func (d *decoder) procRecord(raw []byte) (*process.Event, error) {
	if len(raw) < procSize {
		return nil, fmt.Errorf("%w: %d-byte process record", errMalformed, len(raw))
	}
	r := (*bpf.ProcmonProcRec)(unsafe.Pointer(&raw[0]))
	data := raw[procSize:]
	plen, alen, clen := int(r.PathLen), int(r.ArgsLen), int(r.CwdLen)
	if plen+alen+clen > len(data) {
		return nil, fmt.Errorf("%w: lengths %d+%d+%d exceed %d bytes", errMalformed, plen, alen, clen, len(data))
	}
	flags := r.H.Flags
	kind := process.EventExec
	if r.H.Kind == recFork {
		kind = process.EventFork
	}
	ev := d.event(kind, &r.H)
	ev.PPID = int(r.H.Ppid)
	p := d.identity(&r.H)
	p.Creds = convertCreds(&r.C)
	p.UID = int(p.Creds.EUID)
	p.NS = process.Namespaces{PID: uint64(r.NsPid), Mnt: uint64(r.NsMnt), Net: uint64(r.NsNet),
		User: uint64(r.C.UserNs), UTS: uint64(r.NsUts), IPC: uint64(r.NsIpc),
		Cgroup: uint64(r.NsCgroup), Time: uint64(r.NsTime)}
	if cg, ok := d.cgroups.lookup(r.CgroupId, p.ID); ok {
		p.Cgroup, p.ContainerID, p.ContainerRuntime = cg.Path, cg.ContainerID, cg.Runtime
	}
	ev.Process = p

	switch {
	case flags&fKthread != 0:
		p.KernelThread = true
		p.Path = process.KernelConnection
		return ev, nil
	case flags&fNoMM != 0:
		// A user-mode helper between its fork and its exec: no image yet.
		return ev, nil
	}

	// The executable.
	if plen > 0 && flags&(fPathTrunc|fPathErr) == 0 {
		p.Path = joinComponents(data[:plen])
	} else {
		d.c.pathCut.Add(1)
		partial := ""
		if plen > 0 {
			partial = joinComponents(data[:plen])
		}
		if link, ok := d.completePath(p, partial); ok {
			p.Path = link
		} else {
			p.Incomplete = true
		}
	}
	p.RealPath = p.Path
	if r.NsMnt != 0 && uint64(r.NsMnt) != d.hostMnt && d.hostMnt != 0 && p.Path != "" {
		// Path is the path in the process's mount namespace (a container):
		// reach it through the process's root.
		p.RealPath = procfs.Path(d.proc.Root(), p.ID, "root") + p.Path
	}
	p.ExeDev = unix.Mkdev(r.ExeDev>>20, r.ExeDev&0xfffff)
	p.ExeInode = r.ExeIno
	p.ExeDeleted = flags&fExeUnlinked != 0
	p.Fileless = strings.HasPrefix(p.Path, "/memfd:")

	// The arguments.
	args := data[plen : plen+alen]
	if flags&(fArgsTrunc|fArgsErr) != 0 {
		d.c.argsCut.Add(1)
		if full, ok := d.completeArgs(p, args, flags&fArgsTrunc != 0); ok {
			args = full
		} else {
			p.Incomplete = true
		}
	}
	p.Args = procfs.SplitNul(args)
	p.CleanArgs()

	// The working directory.
	if flags&fNoCwd == 0 {
		if flags&(fCwdTrunc|fCwdErr) == 0 {
			p.CWD = joinComponents(data[plen+alen : plen+alen+clen])
		} else if d.complete {
			if cwd, err := procfs.Readlink(procfs.Path(d.proc.Root(), p.ID, "cwd")); err == nil && d.same(p) {
				p.CWD = strings.TrimSuffix(cwd, deletedSuffix)
			}
		}
	}

	// More groups than the record holds.
	if flags&fGroupsTrunc != 0 {
		p.Incomplete = true
		if d.complete {
			if st, err := d.proc.Status(p.ID); err == nil && d.same(p) {
				p.Creds.Groups, p.Incomplete = st.Groups, false
			}
		}
	}

	if flags&fIMA != 0 {
		if name, size := imaAlgo(r.ImaAlgo); size > 0 {
			p.Checksums = map[string]string{process.HashIMA: name + ":" + hex.EncodeToString(r.Ima[:size])}
		}
	}
	if kind == process.EventExec && flags&fBprm != 0 && d.bprm {
		ev.Bprm = bprmInfo(p.Path, r.BprmFlags)
		if r.BprmFlags&bprmRules != 0 {
			d.verdict(ev, hookBprm, r.Matched, 0, r.Verdict)
		}
	}
	if kind == process.EventExec && flags&fExecRules != 0 {
		d.execVerdict(ev, r)
	}
	if p.Incomplete {
		d.c.incomplete.Add(1)
	}
	return ev, nil
}

// execVerdict adds sched_process_exec's answer to an exec event: the rules
// that matched (for a kill by an allow-list, those whose scope covered the
// exec) and VerdictKilled or VerdictAllowed. It leaves MatchedInKernel to
// bprm_check's rules, which the monitor evaluates itself where the kernel
// did not.
func (d *decoder) execVerdict(ev *process.Event, r *bpf.ProcmonProcRec) {
	matched := r.ExecMatched
	switch r.ExecVerdict {
	case verdictAllow:
		ev.Verdict = process.VerdictAllowed
	case verdictDeny:
		ev.Verdict = process.VerdictKilled
		if matched == 0 {
			matched = r.ExecScoped
		}
	}
	ev.Matched = append(ev.Matched, d.rules.matchedNames(hookExec, matched)...)
	if r.ExecErr != 0 {
		d.c.errors.Add(1)
		d.log.Warn("ebpf: sched_process_exec: a denied exec could not be killed",
			"pid", ev.PID, "path", ev.Process.Path, "errno", -r.ExecErr, "rules", ev.Matched)
	}
}

// same reports whether p's pid still belongs to p (same start ticks).
func (d *decoder) same(p *process.Process) bool {
	s, err := d.proc.Stat(p.ID)
	return err == nil && s.StartTicks == uint64(p.Starttime)
}

// completePath reads the executable's path from /proc when the kernel's walk
// was cut; partial is the suffix the kernel got (may be "").
func (d *decoder) completePath(p *process.Process, partial string) (string, bool) {
	if !d.complete {
		return "", false
	}
	link, err := d.proc.Exe(p.ID)
	if err != nil || !d.same(p) {
		return "", false
	}
	link = strings.TrimSuffix(link, deletedSuffix)
	if partial != "" && !strings.HasSuffix(link, strings.TrimPrefix(partial, "/")) {
		return "", false // exec'd again since
	}
	d.c.completed.Add(1)
	return link, true
}

// completeArgs reads the whole argument list from /proc when the kernel's
// copy was cut at ARGS_BYTES (the /proc copy must start with it) or could
// not be read.
func (d *decoder) completeArgs(p *process.Process, cut []byte, truncated bool) ([]byte, bool) {
	if !d.complete {
		return nil, false
	}
	full, err := procfs.ReadFile(procfs.Path(d.proc.Root(), p.ID, "cmdline"))
	if err != nil || !d.same(p) {
		return nil, false
	}
	if truncated && !bytes.HasPrefix(full, cut) {
		return nil, false // changed or exec'd again since
	}
	d.c.completed.Add(1)
	return full, true
}

func (d *decoder) exit(raw []byte) (*process.Event, error) {
	if len(raw) < exitSize {
		return nil, fmt.Errorf("%w: %d-byte exit record", errMalformed, len(raw))
	}
	r := (*bpf.ProcmonExitRec)(unsafe.Pointer(&raw[0]))
	ev := d.event(process.EventExit, &r.H)
	ev.PPID = int(r.H.Ppid)
	ev.ExitCode = int(r.ExitCode)
	ev.Process = d.identity(&r.H)
	return ev, nil
}

func (d *decoder) syscall(raw []byte) (*process.Event, error) {
	if len(raw) < sysSize {
		return nil, fmt.Errorf("%w: %d-byte syscall record", errMalformed, len(raw))
	}
	r := (*bpf.ProcmonSysRec)(unsafe.Pointer(&raw[0]))
	code := sysCode(r.Code)
	ev := d.event(code.kind(), &r.H)
	if ev.Kind == process.EventUnknown {
		return nil, fmt.Errorf("%w: system call code %d", errMalformed, r.Code)
	}
	t := nativeSyscalls
	if r.H.Flags&fCompat != 0 {
		t = compatSyscalls
	}
	sc := &process.Syscall{Number: int(r.Nr), Name: syscallName(t, r.Nr), Args: append([]uint64(nil), r.Args[:]...), Result: r.Ret}
	if t != nil {
		sc.Arch = t.Arch
	}
	ev.Syscall = sc
	ev.Creds = &process.CredChange{New: convertCreds(&r.C)}
	if code == sysPrctl {
		ev.Prctl = prctlInfo(r.Args[:5])
	}
	if code == sysPtrace {
		switch r.Args[0] {
		case ptraceTraceme:
			ev.Tracer = int(r.H.Ppid)
		case ptraceAttach, ptraceSeize:
			ev.PID, ev.TID, ev.Tracer = int(int32(r.Args[1])), 0, int(r.H.Pid)
		case ptraceDetach:
			ev.PID, ev.TID, ev.Tracer = int(int32(r.Args[1])), 0, 0
		}
	}
	return ev, nil
}

func (d *decoder) lsm(raw []byte) (*process.Event, error) {
	if len(raw) < lsmSize {
		return nil, fmt.Errorf("%w: %d-byte LSM record", errMalformed, len(raw))
	}
	r := (*bpf.ProcmonLsmRec)(unsafe.Pointer(&raw[0]))
	var kind process.EventKind
	switch r.Hook {
	case hookSetuid:
		kind = process.EventUID
	case hookSetgid:
		kind = process.EventGID
	case hookCapset:
		kind = process.EventCapset
	case hookPrctl:
		kind = process.EventPrctl
	case hookUserNS:
		kind = process.EventUserNS
	case hookPtrace:
		kind = process.EventPtrace
	case hookBprm:
		kind = process.EventExec // a denied attempt: no exec followed
	default:
		return nil, fmt.Errorf("%w: LSM hook %d", errMalformed, r.Hook)
	}
	ev := d.event(kind, &r.H)
	ev.Creds = &process.CredChange{Old: convertCreds(&r.OldC), New: convertCreds(&r.NewC)}
	if r.Rules != 0 {
		d.verdict(ev, r.Hook, r.Matched, r.Scoped, r.Verdict)
		// Sent only for the cache (see report in bpf/procmon.c).
		ev.CacheOnly = r.Matched == 0 && r.Verdict != verdictDeny
	}
	switch kind {
	case process.EventUID, process.EventGID:
		ev.Creds.Flags = process.SetIDFlags(r.Args[0])
	case process.EventPrctl:
		ev.Syscall = &process.Syscall{Name: "prctl", Args: append([]uint64(nil), r.Args[:]...)}
		if nr, ok := nativeSyscalls.Number("prctl"); ok { // no table on other GOARCHes
			ev.Syscall.Number, ev.Syscall.Arch = int(nr), nativeSyscalls.Arch
		}
		ev.Prctl = prctlInfo(r.Args[:])
	case process.EventPtrace:
		ev.Tracer = ev.PID
		ev.PID, ev.TID = int(r.TargetPid), 0
		ev.PtraceMode = uint32(r.Args[0])
	case process.EventExec:
		ev.Bprm = bprmInfo(cString(r.Path[:]), r.BprmFlags)
		ev.PPID = int(r.H.Ppid)
	}
	return ev, nil
}

// verdict sets the rules' answer from the kernel: the names of the rules
// matched (for a denial by an allow-list, which no rule matched, those
// whose scope covered the operation) and the verdict.
func (d *decoder) verdict(ev *process.Event, hook uint32, matched, scoped uint64, verdict uint32) {
	ev.MatchedInKernel = true
	switch verdict {
	case verdictAllow:
		ev.Verdict = process.VerdictAllowed
	case verdictDeny:
		ev.Verdict = process.VerdictDenied
		if matched == 0 {
			matched = scoped
		}
	}
	ev.Matched = d.rules.matchedNames(hook, matched)
}

// bprmInfo converts bprm_check's flags; the file capabilities are read from
// path (the extended attribute is not readable in the hook).
func bprmInfo(path string, flags uint32) *process.Bprm {
	b := &process.Bprm{Path: path, Setuid: flags&bprmSetuid != 0, Setgid: flags&bprmSetgid != 0,
		NoSuid: flags&bprmNosuid != 0, Fileless: flags&bprmFileless != 0}
	if path != "" && !b.Fileless {
		b.FileCaps = process.HasFileCaps(path)
	}
	return b
}

// prctlInfo returns the option and arguments of a prctl call.
func prctlInfo(args []uint64) *process.Prctl {
	p := &process.Prctl{Option: int(int32(args[0])), Name: process.PrctlName(int(int32(args[0])))}
	copy(p.Args[:], args[1:])
	return p
}

// convertCreds converts the kernel's credentials record.
func convertCreds(c *bpf.ProcmonCredsRec) process.Credentials {
	cr := process.Credentials{
		UID: c.Uid, EUID: c.Euid, SUID: c.Suid, FSUID: c.Fsuid,
		GID: c.Gid, EGID: c.Egid, SGID: c.Sgid, FSGID: c.Fsgid,
		CapInheritable: process.CapSet(c.CapInh),
		CapPermitted:   process.CapSet(c.CapPrm),
		CapEffective:   process.CapSet(c.CapEff),
		CapBounding:    process.CapSet(c.CapBnd),
		CapAmbient:     process.CapSet(c.CapAmb),
		NoNewPrivs:     c.NoNewPrivs != 0,
		Seccomp:        int(c.Seccomp),
		UserNS:         uint64(c.UserNs),
	}
	if n := min(int(c.Ngroups), len(c.Groups)); n > 0 {
		cr.Groups = append([]uint32(nil), c.Groups[:n]...)
	}
	return cr
}

// joinComponents turns the kernel's leaf-first, NUL-terminated path
// components into an absolute path.
func joinComponents(b []byte) string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return "/"
	}
	var sb strings.Builder
	sb.Grow(len(b) + 1)
	for end := len(b); end >= 0; {
		start := bytes.LastIndexByte(b[:end], 0) + 1
		sb.WriteByte('/')
		sb.Write(b[start:end])
		end = start - 1
	}
	return sb.String()
}

// cString returns the string before the first NUL.
func cString[T int8 | uint8](b []T) string {
	s := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// imaAlgos are the kernel's enum hash_algo names and digest sizes.
var imaAlgos = [...]struct {
	name string
	size int
}{
	{"md4", 16}, {"md5", 16}, {"sha1", 20}, {"rmd160", 20}, {"sha256", 32}, {"sha384", 48},
	{"sha512", 64}, {"sha224", 28}, {"rmd128", 16}, {"rmd256", 32}, {"rmd320", 40},
	{"wp256", 32}, {"wp384", 48}, {"wp512", 64}, {"tgr128", 16}, {"tgr160", 20},
	{"tgr192", 24}, {"sm3", 32}, {"streebog256", 32}, {"streebog512", 64},
	{"sha3-256", 32}, {"sha3-384", 48}, {"sha3-512", 64},
}

// imaAlgo returns the name and digest size of a hash_algo value.
func imaAlgo(a uint8) (string, int) {
	if int(a) < len(imaAlgos) {
		return imaAlgos[a].name, imaAlgos[a].size
	}
	return "", 0
}

// kindOf returns a record's kind from its header (0 if too short).
func kindOf(raw []byte) uint16 {
	if len(raw) < 2 {
		return 0
	}
	return binary.LittleEndian.Uint16(raw)
}
