package audit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/proctrack/proctrack/internal/intern"
	"github.com/proctrack/proctrack/internal/sysnum"
	"github.com/proctrack/proctrack/procmon/process"
)

// This file turns the records of one audit event (one serial number, as the
// grouper gathers them) into a process.Event. It reads the kernel's
// record text itself rather than through auparse/aucoalesce, which lose what
// proctrack needs: auparse cuts hex-encoded values at the first NUL, joins
// the pieces of a long argument (a1_len=, a1[0]=, a1[1]=...) not at all,
// and replaces the exit code by its errno name.

// errMalformed is wrapped by every conversion error.
var errMalformed = errors.New("audit: malformed record")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
}

// field is one key=value pair of a record, the value as the kernel wrote it
// without its quotes.
type field struct {
	key, val string
	quoted   bool
}

// fields are a record's pairs in order.
type fields []field

// appendFields splits a record body into its key=value pairs and appends
// them to out. A token without '=' is skipped; a quote left open is an
// error.
func appendFields(out fields, body string) (fields, error) {
	for i := 0; i < len(body); {
		if body[i] == ' ' {
			i++
			continue
		}
		start := i
		for i < len(body) && body[i] != '=' && body[i] != ' ' {
			i++
		}
		if i >= len(body) || body[i] == ' ' {
			continue // a word without a value
		}
		key := body[start:i]
		i++ // '='
		if i < len(body) && (body[i] == '"' || body[i] == '\'') {
			q := body[i]
			end := strings.IndexByte(body[i+1:], q)
			if end < 0 {
				return out, malformed("unterminated quote in %q", key)
			}
			out = append(out, field{key: key, val: body[i+1 : i+1+end], quoted: true})
			i += end + 2
			continue
		}
		start = i
		for i < len(body) && body[i] != ' ' {
			i++
		}
		out = append(out, field{key: key, val: body[start:i]})
	}
	return out, nil
}

// get returns the field named key.
func (fs fields) get(key string) (field, bool) {
	for _, f := range fs {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// str returns an untrusted string field (comm, exe, cwd, name, arguments):
// the kernel writes it quoted, or hex-encoded when it contains a space,
// a quote, a control or a non-ASCII byte, or (null) / ? when there is none.
// The string is t's (see untrusted).
func (fs fields) str(key string) (string, error) {
	f, ok := fs.get(key)
	if !ok {
		return "", nil
	}
	return untrusted(f, shared)
}

// untrusted decodes an untrusted string field. The fields' text is the
// grouper's buffer, which it reuses: every string that leaves the
// conversion comes from here, made a string of its own by keep (shared,
// or strings.Clone).
func untrusted(f field, keep func(string) string) (string, error) {
	if f.quoted {
		return keep(f.val), nil
	}
	switch f.val {
	case "(null)", "?", "(none)":
		return "", nil
	}
	s, ok := decodeHex(f.val)
	if !ok {
		return "", malformed("%s=%q is neither quoted nor hex", f.key, f.val)
	}
	return s, nil
}

// maxInterned bounds the strings kept shared: longer ones are copied.
const maxInterned = 256

// shared returns s as a string of its own, the one copy the process keeps
// of it (intern.String) when it is short: the strings an event keeps that
// repeat from one event to the next (comm, exe, cwd), so that a storm's
// thousand execs of /bin/true share one copy of each.
func shared(s string) string {
	if len(s) > maxInterned {
		return strings.Clone(s)
	}
	return intern.String(s)
}

// decodeHex decodes the kernel's upper-case hex encoding, keeping every
// byte (NULs included).
func decodeHex(s string) (string, bool) {
	if len(s)%2 != 0 {
		return "", false
	}
	b := make([]byte, len(s)/2)
	for i := range b {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return "", false
		}
		b[i] = hi<<4 | lo
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// dec returns a decimal field; ok is false when it is absent.
func (fs fields) dec(key string) (v int64, ok bool, err error) {
	f, ok := fs.get(key)
	if !ok {
		return 0, false, nil
	}
	v, err = decField(f)
	return v, true, err
}

// decField parses a decimal field.
func decField(f field) (int64, error) {
	v, err := strconv.ParseInt(f.val, 10, 64)
	if err != nil {
		return 0, malformed("%s=%q: %v", f.key, f.val, err)
	}
	return v, nil
}

// id returns a uid or gid field (4294967295 for an unset id).
func (fs fields) id(key string) (uint32, bool, error) {
	f, ok := fs.get(key)
	if !ok {
		return 0, false, nil
	}
	v, err := idField(f)
	return v, true, err
}

// idField parses a uid or gid field.
func idField(f field) (uint32, error) {
	v, err := strconv.ParseUint(f.val, 10, 32)
	if err != nil {
		return 0, malformed("%s=%q: %v", f.key, f.val, err)
	}
	return uint32(v), nil
}

// hexNum returns a field written in hex (a0..a3, arch, cap_*), with or
// without a 0x prefix.
func (fs fields) hexNum(key string) (uint64, bool, error) {
	f, ok := fs.get(key)
	if !ok {
		return 0, false, nil
	}
	v, err := hexField(f)
	return v, true, err
}

// hexField parses a field written in hex.
func hexField(f field) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(f.val, "0x"), 16, 64)
	if err != nil {
		return 0, malformed("%s=%q: %v", f.key, f.val, err)
	}
	return v, nil
}

// syscallRecord is what a SYSCALL record says.
type syscallRecord struct {
	arch       uint32
	archName   string
	nr         int
	name       string
	hasSuccess bool
	success    bool
	exit       int64
	args       [4]uint64
	pid, ppid  int
	creds      process.Credentials
	comm, exe  string
}

// Fields of a SYSCALL record, indexes of syscallFields.
const (
	scArch = iota
	scSyscall
	scPID
	scPPID
	scSuccess
	scExit
	scA0              // a0..a3
	scUID  = scA0 + 4 // uid, euid, suid, fsuid, gid, egid, sgid, fsgid
	scComm = scUID + 8
	scExe  = scComm + 1
	scKeys = scExe + 1
)

// syscallField is the index of a SYSCALL record's field named key, -1 for
// a field the conversion does not read.
func syscallField(key string) int {
	switch key {
	case "arch":
		return scArch
	case "syscall":
		return scSyscall
	case "pid":
		return scPID
	case "ppid":
		return scPPID
	case "success":
		return scSuccess
	case "exit":
		return scExit
	case "a0":
		return scA0
	case "a1":
		return scA0 + 1
	case "a2":
		return scA0 + 2
	case "a3":
		return scA0 + 3
	case "uid":
		return scUID
	case "euid":
		return scUID + 1
	case "suid":
		return scUID + 2
	case "fsuid":
		return scUID + 3
	case "gid":
		return scUID + 4
	case "egid":
		return scUID + 5
	case "sgid":
		return scUID + 6
	case "fsgid":
		return scUID + 7
	case "comm":
		return scComm
	case "exe":
		return scExe
	}
	return -1
}

// parseSyscall reads a SYSCALL record's fields into r in one pass (the
// first of a key counts, as with fields.get).
func parseSyscall(fs fields, r *syscallRecord) error {
	var at [scKeys]*field
	for i := range fs {
		if k := syscallField(fs[i].key); k >= 0 && at[k] == nil {
			at[k] = &fs[i]
		}
	}
	if at[scArch] == nil {
		return malformed("SYSCALL without arch")
	}
	arch, err := hexField(*at[scArch])
	if err != nil {
		return err
	}
	r.arch = uint32(arch)
	r.archName = archName(r.arch)
	if at[scSyscall] == nil {
		return malformed("SYSCALL without a valid syscall number")
	}
	nr, err := decField(*at[scSyscall])
	if err != nil {
		return err
	}
	if nr < 0 || nr > 1<<20 {
		return malformed("SYSCALL without a valid syscall number")
	}
	r.nr = int(nr)
	r.name = syscallName(r.archName, r.nr)
	if at[scPID] == nil {
		return malformed("SYSCALL without a valid pid")
	}
	pid, err := decField(*at[scPID])
	if err != nil {
		return err
	}
	if pid <= 0 || pid > 1<<31-1 {
		return malformed("SYSCALL without a valid pid")
	}
	r.pid = int(pid)
	if f := at[scPPID]; f != nil {
		ppid, err := decField(*f)
		if err != nil {
			return err
		}
		r.ppid = int(ppid)
	}
	if f := at[scSuccess]; f != nil {
		r.hasSuccess = true
		r.success = f.val == "yes"
	}
	if f := at[scExit]; f != nil {
		if r.exit, err = decField(*f); err != nil {
			return err
		}
	}
	for i := range r.args {
		if f := at[scA0+i]; f != nil {
			if r.args[i], err = hexField(*f); err != nil {
				return err
			}
		}
	}
	var ids [8]uint32
	for i := range ids {
		if f := at[scUID+i]; f != nil {
			if ids[i], err = idField(*f); err != nil {
				return err
			}
		}
	}
	c := &r.creds
	c.UID, c.EUID, c.SUID, c.FSUID = ids[0], ids[1], ids[2], ids[3]
	c.GID, c.EGID, c.SGID, c.FSGID = ids[4], ids[5], ids[6], ids[7]
	if f := at[scComm]; f != nil {
		if r.comm, err = untrusted(*f, shared); err != nil {
			return err
		}
	}
	if f := at[scExe]; f != nil {
		if r.exe, err = untrusted(*f, shared); err != nil {
			return err
		}
	}
	return nil
}

// archName names an AUDIT_ARCH_* value as go-libaudit does ("x86_64").
func archName(arch uint32) string {
	return auparse.AuditArch(arch).String()
}

// syscallName resolves a syscall number with the architecture's generated
// table (internal/sysnum); "" when the table does not know it.
func syscallName(arch string, nr int) string {
	if nr < 0 || nr > math.MaxUint32 {
		return ""
	}
	return sysnum.ByArch(arch).Name(uint32(nr))
}

// syscallKind is the event kind of the syscalls the source reports.
var syscallKind = map[string]process.EventKind{
	"execve": process.EventExec, "execveat": process.EventExec,
	"exit_group": process.EventExit,
	"setuid":     process.EventUID, "setreuid": process.EventUID, "setresuid": process.EventUID, "setfsuid": process.EventUID,
	"setuid32": process.EventUID, "setreuid32": process.EventUID, "setresuid32": process.EventUID, "setfsuid32": process.EventUID,
	"setgid": process.EventGID, "setregid": process.EventGID, "setresgid": process.EventGID, "setfsgid": process.EventGID,
	"setgroups": process.EventGID, "setgid32": process.EventGID, "setregid32": process.EventGID,
	"setresgid32": process.EventGID, "setfsgid32": process.EventGID, "setgroups32": process.EventGID,
	"capset":  process.EventCapset,
	"prctl":   process.EventPrctl,
	"ptrace":  process.EventPtrace,
	"unshare": process.EventUserNS, "clone": process.EventUserNS,
}

// convert turns the records of one audit event, stamped ts, into a
// process.Event. It
// returns nil for events proctrack does not report (other syscalls, failed
// calls, records of other kinds). A non-nil error means part of the input
// was malformed: the event may still be returned with what could be read
// (an exec whose argument records are damaged), or be nil. It never
// panics, whatever the input.
func convert(ts time.Time, recs []record) (*process.Event, error) {
	var c converter
	return c.convert(ts, recs)
}

// maxScratch bounds the fields a converter keeps between events: an event
// with more (thousands of arguments) leaves its scratch to the collector.
const maxScratch = 1024

// converter is convert with the records' fields parsed into a scratch
// slice it reuses from one event to the next (a record has about 35
// fields: a slice each was half the bytes the source allocated). The
// event it returns holds strings only, never the scratch.
type converter struct {
	scratch fields
}

// convert is the package's convert, with c's scratch.
func (c *converter) convert(ts time.Time, recs []record) (*process.Event, error) {
	defer func() {
		if cap(c.scratch) > maxScratch {
			c.scratch = nil
		} else {
			clear(c.scratch) // let the records' text go
			c.scratch = c.scratch[:0]
		}
	}()
	var (
		sc, seccomp, cwd, path0, capset, objPID, fcaps fields
		execve                                         []fields
		errs                                           []error
	)
	for _, m := range recs {
		switch m.typ {
		case auparse.AUDIT_SYSCALL, auparse.AUDIT_SECCOMP, auparse.AUDIT_EXECVE, auparse.AUDIT_CWD,
			auparse.AUDIT_PATH, auparse.AUDIT_CAPSET, auparse.AUDIT_OBJ_PID, auparse.AUDIT_BPRM_FCAPS:
		default:
			continue
		}
		start := len(c.scratch)
		var err error
		c.scratch, err = appendFields(c.scratch, m.body)
		fs := c.scratch[start:len(c.scratch):len(c.scratch)]
		if err != nil {
			errs = append(errs, fmt.Errorf("%v record: %w", m.typ, err))
			if m.typ == auparse.AUDIT_SYSCALL || m.typ == auparse.AUDIT_SECCOMP {
				return nil, errors.Join(errs...)
			}
			continue
		}
		switch m.typ {
		case auparse.AUDIT_SYSCALL:
			sc = fs
		case auparse.AUDIT_SECCOMP:
			seccomp = fs
		case auparse.AUDIT_EXECVE:
			execve = append(execve, fs)
		case auparse.AUDIT_CWD:
			cwd = fs
		case auparse.AUDIT_PATH:
			if f, ok := fs.get("item"); ok && f.val == "0" {
				path0 = fs
			}
		case auparse.AUDIT_CAPSET:
			capset = fs
		case auparse.AUDIT_OBJ_PID:
			if objPID == nil {
				objPID = fs
			}
		case auparse.AUDIT_BPRM_FCAPS:
			fcaps = fs
		}
	}
	if seccomp != nil {
		ev, err := seccompEvent(seccomp, sc, ts)
		return ev, errors.Join(append(errs, err)...)
	}
	if sc == nil {
		return nil, errors.Join(errs...)
	}
	var sr syscallRecord
	r := &sr
	if err := parseSyscall(sc, r); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	kind, ok := syscallKind[r.name]
	if !ok {
		return nil, errors.Join(errs...)
	}
	if kind != process.EventExit && (!r.hasSuccess || !r.success) {
		return nil, errors.Join(errs...)
	}
	ev := r.event(kind, ts)
	switch kind {
	case process.EventExec:
		p := ev.Process
		var err error
		if p.CWD, err = cwd.str("cwd"); err != nil {
			errs = append(errs, err)
		}
		if p.Path == "" && path0 != nil {
			name, err := path0.str("name")
			if err != nil {
				errs = append(errs, err)
			}
			if name != "" && !strings.HasPrefix(name, "/") && p.CWD != "" {
				name = strings.TrimSuffix(p.CWD, "/") + "/" + name
			}
			setPath(p, name)
		}
		args, err := execArgs(execve)
		if err != nil {
			errs = append(errs, err)
		}
		p.Args = args
		if fcaps != nil {
			if err := applyCaps(&p.Creds, fcaps, "pi", "pp", "pe", "pa"); err != nil {
				errs = append(errs, err)
			}
		}
	case process.EventExit:
		// exit_group(status): the wait(2) status of a normal exit.
		ev.ExitCode = int(r.args[0]&0xff) << 8
	case process.EventUID, process.EventGID:
		ev.Creds = &process.CredChange{New: r.creds}
	case process.EventCapset:
		c := r.creds
		if capset == nil {
			errs = append(errs, malformed("capset without a CAPSET record"))
		} else if err := applyCaps(&c, capset, "cap_pi", "cap_pp", "cap_pe", "cap_pa"); err != nil {
			errs = append(errs, err)
		}
		ev.Creds = &process.CredChange{New: c}
		ev.Process.Creds = c
	case process.EventPrctl:
	case process.EventPtrace:
		ptraceEvent(ev, r, objPID, &errs)
	case process.EventUserNS:
		if r.args[0]&cloneNewUser == 0 {
			return nil, errors.Join(errs...)
		}
		if strings.HasPrefix(r.name, "clone") {
			// The new user namespace is the child's: report the child
			// (the pid clone returned), with the caller as its parent.
			if r.exit <= 0 || r.exit > 1<<31-1 {
				return nil, errors.Join(append(errs, malformed("clone returned %d", r.exit))...)
			}
			child := int(r.exit)
			ev.PID, ev.PPID = child, r.pid
			ev.Process.ID, ev.Process.PPID = child, r.pid
		}
	}
	return ev, errors.Join(errs...)
}

// newProcess is process.NewProcessEmpty without the Checksums map, an
// allocation per event for nothing: the records carry no checksums, and
// the monitor's cache keeps a nil map for a process without any.
func newProcess(pid int, comm string) *process.Process {
	return &process.Process{ID: pid, Comm: comm}
}

// process is the process as the SYSCALL record shows it at the syscall's
// exit.
func (r *syscallRecord) process() *process.Process {
	p := newProcess(r.pid, r.comm)
	p.PPID = r.ppid
	p.Creds = r.creds
	p.UID = int(r.creds.EUID)
	setPath(p, r.exe)
	return p
}

// event is the record's event of kind, with its Process and Syscall. The
// event, its system call and the call's arguments are one allocation.
func (r *syscallRecord) event(kind process.EventKind, ts time.Time) *process.Event {
	e := &struct {
		ev   process.Event
		call process.Syscall
		args [len(r.args)]uint64
	}{args: r.args}
	e.call = process.Syscall{Name: r.name, Number: r.nr, Arch: r.archName, Args: e.args[:], Result: r.exit}
	e.ev = process.Event{
		Kind:    kind,
		Time:    ts,
		Method:  process.MethodAudit,
		PID:     r.pid,
		Process: r.process(),
		Syscall: &e.call,
	}
	return &e.ev
}

// setPath sets Path (and RealPath, like process.Reader.Exec) from an exe
// path as the kernel names it, marking deleted and memfd binaries.
func setPath(p *process.Process, exe string) {
	if trimmed, ok := strings.CutSuffix(exe, " (deleted)"); ok {
		exe = trimmed
		p.ExeDeleted = true
	}
	p.Path, p.RealPath = exe, exe
	if strings.HasPrefix(exe, "/memfd:") {
		p.Fileless = true
	}
}

// applyCaps sets the inheritable, permitted, effective and ambient sets
// from the four hex fields named.
func applyCaps(c *process.Credentials, fs fields, pi, pp, pe, pa string) error {
	var v [4]uint64
	for i, k := range [4]string{pi, pp, pe, pa} {
		x, _, err := fs.hexNum(k)
		if err != nil {
			return err
		}
		v[i] = x
	}
	c.CapInheritable, c.CapPermitted = process.CapSet(v[0]), process.CapSet(v[1])
	c.CapEffective, c.CapAmbient = process.CapSet(v[2]), process.CapSet(v[3])
	return nil
}

// ptraceEvent fills a ptrace event. PID is the traced process and Tracer
// the tracing one: for PTRACE_TRACEME the caller is traced by its parent;
// for PTRACE_DETACH the target (a1) is let go (Tracer 0); for the other
// requests (PTRACE_ATTACH, PTRACE_SEIZE) the caller traces the target, which
// the OBJ_PID record names (a1 when it is missing).
func ptraceEvent(ev *process.Event, r *syscallRecord, obj fields, errs *[]error) {
	switch r.args[0] {
	case ptraceTraceme:
		ev.PID, ev.Tracer = r.pid, r.ppid
		return
	case ptraceDetach:
		ev.Tracer = 0
	default:
		ev.Tracer = r.pid
	}
	target := int(int32(uint32(r.args[1])))
	comm := ""
	if obj != nil && r.args[0] != ptraceDetach {
		if opid, ok, err := obj.dec("opid"); err != nil {
			*errs = append(*errs, err)
		} else if ok && opid > 0 && opid <= 1<<31-1 {
			target = int(opid)
		}
		var err error
		if comm, err = obj.str("ocomm"); err != nil {
			*errs = append(*errs, err)
		}
	}
	ev.PID = target
	ev.Process = newProcess(target, comm)
}

// execArgs rebuilds argv from the EXECVE records of an exec: argc= in the
// first, then a<n>= per argument, or a<n>_len= followed by the pieces
// a<n>[0]=, a<n>[1]=... of an argument too long for one record. Each
// value or piece is quoted or hex-encoded on its own.
func execArgs(recs []fields) ([]string, error) {
	if len(recs) == 0 {
		return nil, malformed("exec without an EXECVE record")
	}
	total := 0
	for _, r := range recs {
		total += len(r)
	}
	argc, ok, err := recs[0].dec("argc")
	if err != nil {
		return nil, err
	}
	if !ok || argc < 0 || argc > int64(total) {
		return nil, malformed("EXECVE argc missing or out of range")
	}
	args := make([]string, argc)
	var few [16]bool // most execs: no allocation
	var seen []bool
	if argc <= int64(len(few)) {
		seen = few[:argc]
	} else {
		seen = make([]bool, argc)
	}
	var pieces map[int]*strings.Builder
	var errs []error
	for _, r := range recs {
		for _, f := range r {
			if f.key == "argc" || len(f.key) < 2 || f.key[0] != 'a' {
				continue
			}
			rest := f.key[1:]
			numEnd := 0
			for numEnd < len(rest) && rest[numEnd] >= '0' && rest[numEnd] <= '9' {
				numEnd++
			}
			n, err := strconv.Atoi(rest[:numEnd])
			if err != nil || int64(n) >= argc {
				errs = append(errs, malformed("EXECVE field %q out of range", f.key))
				continue
			}
			suffix := rest[numEnd:]
			switch {
			case suffix == "":
				v, err := untrusted(f, strings.Clone)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				args[n], seen[n] = v, true
			case suffix == "_len":
				// The full length; the pieces follow.
			case strings.HasPrefix(suffix, "[") && strings.HasSuffix(suffix, "]"):
				v, err := untrusted(f, strings.Clone)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if pieces == nil {
					pieces = map[int]*strings.Builder{}
				}
				b := pieces[n]
				if b == nil {
					b = &strings.Builder{}
					pieces[n] = b
				}
				b.WriteString(v)
				seen[n] = true
			default:
				errs = append(errs, malformed("EXECVE field %q", f.key))
			}
		}
	}
	for n, b := range pieces {
		args[n] = b.String()
		want := -1
		for _, r := range recs {
			if l, ok, err := r.dec("a" + strconv.Itoa(n) + "_len"); ok && err == nil {
				want = int(l)
				break
			}
		}
		if want >= 0 && want != len(args[n]) {
			errs = append(errs, malformed("EXECVE a%d: %d bytes, a%d_len=%d", n, len(args[n]), n, want))
		}
	}
	for n, ok := range seen {
		if !ok {
			errs = append(errs, malformed("EXECVE a%d missing (argc=%d)", n, argc))
			args = args[:n]
			break
		}
	}
	return args, errors.Join(errs...)
}

// Seccomp filter actions (SECCOMP_RET_*), as the code= field carries them.
var seccompActions = map[uint32]string{
	0x80000000: "kill_process",
	0x00000000: "kill_thread",
	0x00030000: "trap",
	0x00050000: "errno",
	0x7fc00000: "user_notif",
	0x7ff00000: "trace",
	0x7ffc0000: "log",
	0x7fff0000: "allow",
}

// SeccompActionName names a seccomp filter's return value (the code= field
// of an AUDIT_SECCOMP record): "kill_process", "kill_thread", "trap",
// "errno", "user_notif", "trace", "log", "allow", or "unknown(0x...)".
func SeccompActionName(code uint32) string {
	if name, ok := seccompActions[code&0xffff0000]; ok {
		return name
	}
	return fmt.Sprintf("unknown(%#x)", code)
}

// seccompEvent converts an AUDIT_SECCOMP record: the kernel writes one when
// a filter's action is to be logged (see the package documentation). It
// carries the task's pid, real uid and gid, comm, exe, the syscall's arch
// and number and the action (code=). The syscall's arguments are not in it;
// they come from a SYSCALL record of the same event when there is one.
func seccompEvent(fs, sc fields, ts time.Time) (*process.Event, error) {
	pid, ok, err := fs.dec("pid")
	if err != nil {
		return nil, err
	}
	if !ok || pid <= 0 || pid > 1<<31-1 {
		return nil, malformed("SECCOMP without a valid pid")
	}
	arch, ok, err := fs.hexNum("arch")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, malformed("SECCOMP without arch")
	}
	nr, ok, err := fs.dec("syscall")
	if err != nil {
		return nil, err
	}
	if !ok || nr < -1 || nr > 1<<20 {
		return nil, malformed("SECCOMP without a valid syscall number")
	}
	code, ok, err := fs.hexNum("code")
	if err != nil {
		return nil, err
	}
	if !ok || code > 0xffffffff {
		return nil, malformed("SECCOMP without a valid code")
	}
	var errs []error
	comm, err := fs.str("comm")
	if err != nil {
		errs = append(errs, err)
	}
	exe, err := fs.str("exe")
	if err != nil {
		errs = append(errs, err)
	}
	p := newProcess(int(pid), comm)
	setPath(p, exe)
	// The record carries the real uid and gid only.
	if uid, ok, err := fs.id("uid"); err != nil {
		errs = append(errs, err)
	} else if ok {
		p.UID, p.Creds.UID = int(uid), uid
	}
	if gid, ok, err := fs.id("gid"); err != nil {
		errs = append(errs, err)
	} else if ok {
		p.Creds.GID = gid
	}
	an := archName(uint32(arch))
	call := &process.Syscall{
		Name:          syscallName(an, int(nr)),
		Number:        int(nr),
		Arch:          an,
		SeccompAction: SeccompActionName(uint32(code)),
	}
	if sc != nil {
		var r syscallRecord
		if err := parseSyscall(sc, &r); err == nil && r.pid == int(pid) && r.nr == int(nr) {
			call.Args = r.args[:]
			if r.hasSuccess {
				call.Result = r.exit
			}
			p = r.process()
		}
	}
	return &process.Event{
		Kind:    process.EventSeccomp,
		Time:    ts,
		Method:  process.MethodAudit,
		PID:     int(pid),
		Process: p,
		Syscall: call,
	}, errors.Join(errs...)
}
