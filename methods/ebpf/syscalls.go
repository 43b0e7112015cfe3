package ebpf

import "github.com/proctrack/proctrack/procmon/process"

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

// syscallDef is one watched system call of an architecture.
type syscallDef struct {
	nr   uint32
	name string
	code sysCode
}

// x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl). x32 uses the
// same numbers with bit 30 set, which the program clears, except for
// ptrace (521).
var syscallsX8664 = []syscallDef{
	{105, "setuid", sysSetuid}, {113, "setreuid", sysSetreuid}, {117, "setresuid", sysSetresuid},
	{122, "setfsuid", sysSetfsuid},
	{106, "setgid", sysSetgid}, {114, "setregid", sysSetregid}, {119, "setresgid", sysSetresgid},
	{123, "setfsgid", sysSetfsgid}, {116, "setgroups", sysSetgroups},
	{126, "capset", sysCapset},
	{157, "prctl", sysPrctl},
	{272, "unshare", sysUnshare}, {56, "clone", sysClone}, {435, "clone3", sysClone3},
	{101, "ptrace", sysPtrace}, {521, "ptrace", sysPtrace},
}

// i386 numbers (syscall_32.tbl), for 32-bit programs on a 64-bit kernel.
var syscallsI386 = []syscallDef{
	{23, "setuid", sysSetuid}, {70, "setreuid", sysSetreuid}, {164, "setresuid", sysSetresuid},
	{138, "setfsuid", sysSetfsuid},
	{213, "setuid32", sysSetuid}, {203, "setreuid32", sysSetreuid}, {208, "setresuid32", sysSetresuid},
	{215, "setfsuid32", sysSetfsuid},
	{46, "setgid", sysSetgid}, {71, "setregid", sysSetregid}, {170, "setresgid", sysSetresgid},
	{139, "setfsgid", sysSetfsgid}, {81, "setgroups", sysSetgroups},
	{214, "setgid32", sysSetgid}, {204, "setregid32", sysSetregid}, {210, "setresgid32", sysSetresgid},
	{216, "setfsgid32", sysSetfsgid}, {206, "setgroups32", sysSetgroups},
	{185, "capset", sysCapset},
	{172, "prctl", sysPrctl},
	{310, "unshare", sysUnshare}, {120, "clone", sysClone}, {435, "clone3", sysClone3},
	{26, "ptrace", sysPtrace},
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
// number -> code, for the given table.
func filterTable(defs []syscallDef, hooks map[string]bool) map[uint32]uint32 {
	m := make(map[uint32]uint32)
	for _, d := range defs {
		if hooks[d.code.hook()] {
			m[d.nr] = uint32(d.code)
		}
	}
	return m
}

// syscallName returns the name of a system call number of a table.
func syscallName(defs []syscallDef, nr uint32) string {
	for _, d := range defs {
		if d.nr == nr {
			return d.name
		}
	}
	return ""
}

// ptrace requests the tracepoint tier reports.
const (
	ptraceTraceme = 0
	ptraceAttach  = 16
	ptraceDetach  = 17
	ptraceSeize   = 0x4206
)
