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
	// Process is the process as of the event, from the cache or /proc;
	// Incomplete when it was gone before it could be read. It is the
	// cached process itself, which the monitor keeps updating: read it
	// under its RLock.
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
	// matched, evaluated when the monitor received it.
	Matched []string
}

// CredChange is the before and after of a credential change.
type CredChange struct {
	Old, New Credentials
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
