package ebpf

import (
	"runtime"

	"github.com/proctrack/proctrack/internal/sysnum"
	"github.com/proctrack/proctrack/procmon/process"
)

// sysCode is the C enum sys_code: what a watched system call is.
type sysCode uint32

// The values of enum sys_code in bpf/procmon.h.
const (
	sysNone sysCode = iota
	sysSetuid
	sysSetreuid
	sysSetresuid
	sysSetfsuid
	sysSetgid
	sysSetregid
	sysSetresgid
	sysSetfsgid
	sysSetgroups
	sysCapset
	sysPrctl
	sysUnshare
	sysClone
	sysClone3
	sysPtrace
)

// syscallSlots is SYSCALL_SLOTS: the size of the filter arrays.
const syscallSlots = 1024

// watchedSyscalls are the system calls the tracepoint tier reports, by
// name: their numbers come from the architecture's generated table
// (internal/sysnum). The 32-bit names (setuid32, ...) exist in the i386 and
// arm tables only.
var watchedSyscalls = map[string]sysCode{
	"setuid": sysSetuid, "setreuid": sysSetreuid, "setresuid": sysSetresuid, "setfsuid": sysSetfsuid,
	"setuid32": sysSetuid, "setreuid32": sysSetreuid, "setresuid32": sysSetresuid, "setfsuid32": sysSetfsuid,
	"setgid": sysSetgid, "setregid": sysSetregid, "setresgid": sysSetresgid, "setfsgid": sysSetfsgid,
	"setgid32": sysSetgid, "setregid32": sysSetregid, "setresgid32": sysSetresgid, "setfsgid32": sysSetfsgid,
	"setgroups": sysSetgroups, "setgroups32": sysSetgroups,
	"capset":  sysCapset,
	"prctl":   sysPrctl,
	"unshare": sysUnshare, "clone": sysClone, "clone3": sysClone3,
	"ptrace": sysPtrace,
}

// x32Ptrace is x32's own ptrace number (arch/x86/entry/syscalls/
// syscall_64.tbl: 521 x32 ptrace), which the program sees with the x32 bit
// cleared and reports as ptrace. Every other watched call has the x86_64
// number on x32; x/sys, which the tables come from, has no x32 table.
const x32Ptrace = 521

// The tables of the running architecture's native and 32-bit ABIs: x86_64
// and i386 on amd64, aarch64 and arm on arm64 (the BPF object is built for
// GOARCH, and runs in the kernel the binary runs on). Both are nil
// elsewhere: the tracepoint tier then reports no system calls.
var nativeSyscalls, compatSyscalls = syscallTables(runtime.GOARCH)

// syscallTables returns the native and 32-bit tables of a 64-bit GOARCH
// whose registers bpf/syscall_arch.h reads (amd64, arm64); nil, nil for
// any other.
func syscallTables(goarch string) (native, compat *sysnum.Table) {
	if goarch != "amd64" && goarch != "arm64" {
		return nil, nil
	}
	return sysnum.Native(goarch), sysnum.Compat(goarch)
}

// hook says which Config hook enables a system call.
func (c sysCode) hook() string {
	switch c {
	case sysSetuid, sysSetreuid, sysSetresuid, sysSetfsuid:
		return HookSetuid
	case sysSetgid, sysSetregid, sysSetresgid, sysSetfsgid, sysSetgroups:
		return HookSetgid
	case sysCapset:
		return HookCapset
	case sysPrctl:
		return HookPrctl
	case sysUnshare, sysClone, sysClone3:
		return HookCreateUserNS
	case sysPtrace:
		return HookPtraceAccessCheck
	}
	return ""
}

// kind is the event kind a system call is reported as.
func (c sysCode) kind() process.EventKind {
	switch c.hook() {
	case HookSetuid:
		return process.EventUID
	case HookSetgid:
		return process.EventGID
	case HookCapset:
		return process.EventCapset
	case HookPrctl:
		return process.EventPrctl
	case HookCreateUserNS:
		return process.EventUserNS
	case HookPtraceAccessCheck:
		return process.EventPtrace
	}
	return process.EventUnknown
}

// filterTable returns the filter array contents for the enabled hooks:
// number -> code, for the given table (none for a nil table).
func filterTable(t *sysnum.Table, hooks map[string]bool) map[uint32]uint32 {
	m := make(map[uint32]uint32)
	if t == nil {
		return m
	}
	for name, code := range watchedSyscalls {
		if nr, ok := t.Number(name); ok && hooks[code.hook()] {
			m[nr] = uint32(code)
		}
	}
	if t == sysnum.AMD64 && hooks[sysPtrace.hook()] {
		m[x32Ptrace] = uint32(sysPtrace)
	}
	return m
}

// syscallName returns the name of a system call number of a table.
func syscallName(t *sysnum.Table, nr uint32) string {
	if t == sysnum.AMD64 && nr == x32Ptrace {
		return "ptrace"
	}
	return t.Name(nr)
}

// ptrace requests the tracepoint tier reports.
const (
	ptraceTraceme = 0
	ptraceAttach  = 16
	ptraceDetach  = 17
	ptraceSeize   = 0x4206
)
