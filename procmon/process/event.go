package process

import (
	"strconv"
	"time"
)

// EventKind says what happened to a process.
type EventKind uint8

// Event kinds. Every method reports EventExec, EventFork and EventExit; the
// others depend on what the method's kernel interface carries (see each
// method's package documentation).
const (
	EventUnknown  EventKind = iota
	EventFork               // a new process (not a thread) was created
	EventExec               // the process replaced its image
	EventExit               // the process exited
	EventUID                // a setuid-family call changed the uids
	EventGID                // a setgid-family call changed the gids
	EventSID                // setsid: a new session
	EventPtrace             // ptrace attach or detach
	EventComm               // the process renamed itself (prctl PR_SET_NAME)
	EventCoredump           // the process dumped core
	EventCapset             // capset changed the capability sets
	EventPrctl              // a prctl call
	EventUserNS             // a new user namespace (unshare/clone CLONE_NEWUSER)
	EventSeccomp            // a seccomp filter acted on a system call
)

var kindNames = [...]string{"unknown", "fork", "exec", "exit", "uid", "gid", "sid", "ptrace",
	"comm", "coredump", "capset", "prctl", "userns", "seccomp"}

// String returns the kind's lower-case name ("exec").
func (k EventKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText encodes the kind as its name.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is one thing that happened to a process, as a method reported it and
// the monitor completed it.
type Event struct {
	Kind EventKind
	// Time is when the kernel reported the event (or when it was read,
	// for methods whose records carry no time).
	Time time.Time
	// Method is the method that saw it (MethodNetlink, ...).
	Method string
	// PID is the process (thread group) the event is about; TID the
	// thread, when the method knows it.
	PID, TID int
	// PPID is the parent, for EventFork.
	PPID int
	// Process is the process as it was when the monitor applied the
	// event, from the cache or /proc; Incomplete when it was gone before
	// it could be read. It is the cache's version of that moment, which
	// nothing changes afterwards (later events of the process get new
	// versions): read it without locks, however late; copy it to change
	// it (see Process).
	Process *Process
	// ExitCode is the wait(2) status, for EventExit.
	ExitCode int
	// Creds are the credentials before and after, for EventUID, EventGID
	// and EventCapset. A method that reports only some ids leaves the
	// others as they were.
	Creds *CredChange
	// Tracer is the tracing process, for EventPtrace (0 on detach).
	Tracer int
	// Comm is the new name, for EventComm.
	Comm string
	// Syscall describes the system call behind the event, when the method
	// sees system calls (audit, the eBPF tracepoint tier).
	Syscall *Syscall
	// Matched names the rules (the monitor's Config.Rules) the event
	// matched, evaluated when the monitor received it, or in the kernel
	// (MatchedInKernel) on the eBPF LSM tier.
	Matched []string
	// MatchedInKernel says the kernel evaluated the rules (the eBPF LSM
	// tier's rule tables) and Matched holds its answer.
	MatchedInKernel bool
	// CacheOnly marks an event a method sends only to keep the process
	// cache true: a credential change (EventUID, EventGID, EventCapset)
	// that no rule matched in the kernel on the eBPF LSM tier, where
	// unmatched operations are not reported. The monitor applies it to
	// its cache and does not deliver it.
	CacheOnly bool
	// Verdict is the sandbox's decision where the hook has a sandbox
	// (VerdictAllowed, VerdictDenied, or VerdictKilled for an exec of
	// sched_process_exec); VerdictNone elsewhere. A denied operation did
	// not happen: the process is as it was.
	Verdict Verdict
	// Bprm describes the executed binary (EventExec, and a denied exec
	// attempt) when the bprm_check hook is enabled: what the hook saw on
	// the eBPF LSM tier, read from the file (BprmFromFile) by the monitor
	// for the other methods.
	Bprm *Bprm
	// Prctl is the option and arguments of EventPrctl.
	Prctl *Prctl
	// PtraceMode is the access mode asked for, for EventPtrace on the eBPF
	// LSM tier (PTRACE_MODE_* bits: PtraceModeAttach...).
	PtraceMode uint32
}

// Verdict is a sandbox's decision about an operation.
type Verdict uint8

// Verdicts.
const (
	VerdictNone    Verdict = iota // no sandbox on the hook: reported only
	VerdictAllowed                // the sandbox let the operation happen
	VerdictDenied                 // the sandbox refused it: the call failed with EPERM
	// VerdictKilled: sched_process_exec's sandbox sent SIGKILL at the exec
	// tracepoint. The exec happened (the event carries the new image) but
	// the new image never ran an instruction: its exit follows.
	VerdictKilled
)

// String returns "", "allowed", "denied" or "killed".
func (v Verdict) String() string {
	switch v {
	case VerdictAllowed:
		return "allowed"
	case VerdictDenied:
		return "denied"
	case VerdictKilled:
		return "killed"
	}
	return ""
}

// Bprm is what the bprm_check hook saw of an executed binary.
type Bprm struct {
	// Path is the binary's absolute path (as d_path gives it; cut to 255
	// bytes in a denied attempt's event).
	Path string
	// Setuid and Setgid say the file has the set-user-ID or set-group-ID
	// (and group-execute) bit; NoSuid that its mount ignores them.
	Setuid, Setgid, NoSuid bool
	// FileCaps says the file carries capabilities (security.capability),
	// read from the path when the event is decoded.
	FileCaps bool
	// Fileless says the file has no link: a memfd, an O_TMPFILE file, or
	// a deleted one.
	Fileless bool
}

// Prctl is the option and arguments of a prctl call.
type Prctl struct {
	Option int
	Name   string // "PR_SET_NAME", ... ("" for an option not in the table)
	Args   [4]uint64
}

// PTRACE_MODE_* bits of Event.PtraceMode.
const (
	PtraceModeRead      = 0x01
	PtraceModeAttach    = 0x02
	PtraceModeNoAudit   = 0x04
	PtraceModeFSCreds   = 0x08
	PtraceModeRealCreds = 0x10
)

// CredChange is the before and after of a credential change.
type CredChange struct {
	Old, New Credentials
	// Flags are the kernel's LSM_SETID_* flags of a setuid or setgid
	// change (eBPF LSM tier): which call family made it.
	Flags SetIDFlags
}

// SetIDFlags are the LSM_SETID_* flags of the setuid and setgid hooks.
type SetIDFlags uint32

// LSM_SETID_* values.
const (
	SetIDID  SetIDFlags = 1 // setuid, setgid
	SetIDRE  SetIDFlags = 2 // setreuid, setregid
	SetIDRES SetIDFlags = 4 // setresuid, setresgid
	SetIDFS  SetIDFlags = 8 // setfsuid, setfsgid
)

// String returns the flags' names ("LSM_SETID_RES"), joined by "|".
func (f SetIDFlags) String() string {
	var s string
	for _, x := range []struct {
		f    SetIDFlags
		name string
	}{{SetIDID, "LSM_SETID_ID"}, {SetIDRE, "LSM_SETID_RE"}, {SetIDRES, "LSM_SETID_RES"}, {SetIDFS, "LSM_SETID_FS"}} {
		if f&x.f != 0 {
			if s != "" {
				s += "|"
			}
			s += x.name
		}
	}
	return s
}

// PrctlName returns the name of a prctl option ("PR_SET_NAME"), "" when
// it is not one of the common ones.
func PrctlName(option int) string {
	return prctlNames[option]
}

var prctlNames = map[int]string{
	1: "PR_SET_PDEATHSIG", 2: "PR_GET_PDEATHSIG", 3: "PR_GET_DUMPABLE", 4: "PR_SET_DUMPABLE",
	8: "PR_SET_KEEPCAPS", 15: "PR_SET_NAME", 16: "PR_GET_NAME", 22: "PR_SET_SECCOMP",
	23: "PR_CAPBSET_READ", 24: "PR_CAPBSET_DROP", 27: "PR_GET_SECUREBITS", 28: "PR_SET_SECUREBITS",
	35: "PR_SET_MM", 36: "PR_SET_CHILD_SUBREAPER", 38: "PR_SET_NO_NEW_PRIVS",
	39: "PR_GET_NO_NEW_PRIVS", 47: "PR_CAP_AMBIENT", 0x59616d61: "PR_SET_PTRACER",
}

// Syscall describes a system call an event came from.
type Syscall struct {
	Name   string   // "setuid", "execve", ...
	Number int      // for the architecture below
	Arch   string   // "x86_64", "aarch64", ...
	Args   []uint64 // the raw arguments the method saw
	Result int64    // the return value (negative errno on failure)
	// SeccompAction is the filter's action for EventSeccomp ("kill",
	// "errno", "log", ...).
	SeccompAction string
}
