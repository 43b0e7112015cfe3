package process

import "github.com/proctrack/proctrack/checksum"

// Monitoring methods, best first. The names are those of the seed API plus
// netlink, the proc connector.
const (
	MethodEbpf    = "ebpf"
	MethodNetlink = "netlink"
	MethodAudit   = "audit"
	MethodProc    = "proc"
)

// KernelConnection is the Path of kernel threads: tasks that have no binary.
// Nothing else is ever given this path.
const KernelConnection = "Kernel connection"

// ProcSelf is the prefix of the calling process's own proc directory.
const ProcSelf = "/proc/self/"

// Checksum algorithm names, the keys of Process.Checksums (defined by the
// checksum package, which computes them).
const (
	HashMD5    = checksum.HashMD5
	HashSHA1   = checksum.HashSHA1
	HashSHA256 = checksum.HashSHA256
	// HashIMA holds the kernel's IMA measurement of the binary, as
	// "<algorithm>:<hex digest>", when IMA measured it.
	HashIMA = "process.hash.ima"
)
