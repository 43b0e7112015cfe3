package process

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

// Checksum algorithm names, the keys of Process.Checksums.
const (
	HashMD5    = "process.hash.md5"
	HashSHA1   = "process.hash.sha1"
	HashSHA256 = "process.hash.sha256"
)
