package rules

import (
	"fmt"

	"github.com/proctrack/proctrack/procmon/process"
)

// Input carries the attribute values of one event, as rules see them. A
// field an event does not have is left zero (and then compares as 0, the
// empty set or the empty string).
type Input struct {
	// UID, EUID, GID and EGID are the ids: after the change for setuid and
	// setgid, of the new image for bprm_check, of the creating process for
	// create_user_ns.
	UID, EUID, GID, EGID uint32
	// ECaps and PCaps are the effective and permitted capability sets:
	// after the change for capset, of the new image for bprm_check, of the
	// creating process (before the namespace exists) for create_user_ns.
	ECaps, PCaps process.CapSet
	// Path is the absolute path of the executed binary (bprm_check).
	Path string
	// Name is the name of the executed binary; "" means the last component
	// of Path.
	Name string
	// Binary is the path of the process's binary (scope: binary_path,
	// binary_name, binary_prefix); ParentBinary the parent's
	// (parent_binary_*).
	Binary, ParentBinary string
	// Args are the exec's arguments after argv[0] (sched_process_exec's
	// arg0..arg31 compare with each).
	Args []string
}

// name returns the name attribute.
func (in *Input) name() string {
	if in.Name != "" {
		return in.Name
	}
	return baseName(in.Path)
}

// String returns the input's attributes for logs.
func (in *Input) String() string {
	return fmt.Sprintf("uid=%d euid=%d gid=%d egid=%d ecaps=%#x pcaps=%#x path=%q binary=%q parent=%q args=%q",
		in.UID, in.EUID, in.GID, in.EGID, uint64(in.ECaps), uint64(in.PCaps), in.Path, in.Binary, in.ParentBinary, in.Args)
}

// HookOf returns the hook an event kind belongs to: EventUID is setuid,
// EventGID setgid, EventCapset capset, EventPrctl prctl, EventUserNS
// create_user_ns, EventPtrace ptrace_access_check, EventExec bprm_check.
// Other kinds have no hook.
func HookOf(kind process.EventKind) (string, bool) {
	switch kind {
	case process.EventUID:
		return HookSetuid, true
	case process.EventGID:
		return HookSetgid, true
	case process.EventCapset:
		return HookCapset, true
	case process.EventPrctl:
		return HookPrctl, true
	case process.EventUserNS:
		return HookCreateUserNS, true
	case process.EventPtrace:
		return HookPtraceAccessCheck, true
	case process.EventExec:
		return HookBprmCheck, true
	}
	return "", false
}

// FromEvent maps a monitor event to its hook and the rule attributes. It
// returns ok false for kinds without a hook (fork, exit, ...).
//
// Where the values come from, the same for every method:
//
//   - setuid, setgid, capset: Event.Creds.New (the credentials after the
//     call; the monitor completes them for every method), else the
//     process's credentials.
//   - create_user_ns: the credentials of the creating process before the
//     namespace exists: Event.Creds.Old when the method saw them (the eBPF
//     LSM tier), else the process's cached credentials (which the monitor
//     does not change for this event). Credentials reported after the call
//     are not used: in the new namespace every process has every
//     capability.
//   - bprm_check: the new image: Process.Path, its last component, and the
//     process's credentials after the exec; Args are Process.Args[1:]
//     (what sched_process_exec's argN compare with; that hook has no kind
//     of its own: its rules are answered in the kernel, see Set.Match).
//   - prctl, ptrace_access_check: the process's credentials (these hooks
//     have scope attributes only).
//
// The scope's binary is Event.Process.Path (for bprm_check the new image:
// the old one is gone when the event is read; for ptrace_access_check the
// traced process, which is Event.PID) and the parent's is
// Process.Parent.Path when the cache linked the parent (the parent as it
// was when the process was cached).
//
// Event.Process is the process as of the event, which later events of the
// same process do not change: FromEvent gives the same answer whenever a
// consumer calls it.
func FromEvent(ev *process.Event) (hook string, in Input, ok bool) {
	hook, ok = HookOf(ev.Kind)
	if !ok {
		return "", Input{}, false
	}
	var creds process.Credentials
	if p := ev.Process; p != nil {
		creds = p.Creds
		in.Binary = p.Path
		if p.Parent != nil && p.Parent != p {
			in.ParentBinary = p.Parent.Path
		}
	}
	switch ev.Kind {
	case process.EventUID, process.EventGID, process.EventCapset:
		if ev.Creds != nil {
			creds = ev.Creds.New
		}
	case process.EventUserNS:
		if ev.Creds != nil && ev.Creds.Old.UserNS != 0 {
			creds = ev.Creds.Old
		}
	case process.EventExec:
		in.Path = in.Binary
		if p := ev.Process; p != nil {
			if len(p.Args) > 1 {
				in.Args = p.Args[1:]
			}
		}
	}
	in.UID, in.EUID, in.GID, in.EGID = creds.UID, creds.EUID, creds.GID, creds.EGID
	in.ECaps, in.PCaps = creds.CapEffective, creds.CapPermitted
	return hook, in, true
}
