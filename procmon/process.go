package procmon

import "github.com/proctrack/proctrack/procmon/process"

// Process holds the details of a process; see process.Process.
type Process = process.Process

// Key identifies a process across pid reuse: (pid, start ticks).
type Key = process.Key

// Credentials are the full credentials of a process.
type Credentials = process.Credentials

// CapSet is a capability set as a bitmask.
type CapSet = process.CapSet

// Namespaces holds the namespace inodes of a process.
type Namespaces = process.Namespaces

// TreeItem is one ancestor in Process.Tree.
type TreeItem = process.TreeItem

// Statm is /proc/<pid>/statm.
type Statm = process.Statm

// IOStats is /proc/<pid>/io.
type IOStats = process.IOStats

// NetStats are the network totals of a process's network namespace.
type NetStats = process.NetStats

// Descriptor is an open file descriptor.
type Descriptor = process.Descriptor

// Serialized is the stable JSON-ready form of a Process.
type Serialized = process.Serialized

// Monitoring methods, best first.
const (
	MethodEbpf    = process.MethodEbpf
	MethodNetlink = process.MethodNetlink
	MethodAudit   = process.MethodAudit
	MethodProc    = process.MethodProc
)

// KernelConnection is the Path of kernel threads.
const KernelConnection = process.KernelConnection

// ProcSelf is the prefix of the calling process's own proc directory.
const ProcSelf = process.ProcSelf

// Checksum algorithm names, the keys of Process.Checksums. HashIMA is not
// computed: it holds the kernel's IMA measurement of the binary, as
// "<algorithm>:<hex digest>", where IMA measured it.
const (
	HashMD5    = process.HashMD5
	HashSHA1   = process.HashSHA1
	HashSHA256 = process.HashSHA256
	HashIMA    = process.HashIMA
)

// ErrGone reports a process that exited (or whose pid was reused) while it
// was being read.
var ErrGone = process.ErrGone

// FindProcess reads process pid from /proc; see process.FindProcess.
func FindProcess(pid int, interceptUnknown bool) *Process {
	return process.FindProcess(pid, interceptUnknown)
}

// NewProcess returns a Process with its identity read from /proc.
func NewProcess(pid int, comm string) *Process { return process.NewProcess(pid, comm) }

// NewProcessEmpty returns a Process with nothing read from /proc.
func NewProcessEmpty(pid int, comm string) *Process { return process.NewProcessEmpty(pid, comm) }

// NewProcessWithParent returns a Process with pid, ppid and comm set.
func NewProcessWithParent(pid, ppid int, comm string) *Process {
	return process.NewProcessWithParent(pid, ppid, comm)
}

// PIDs lists the pids of every process in /proc, in ascending order.
func PIDs() ([]int, error) { return process.PIDs() }
