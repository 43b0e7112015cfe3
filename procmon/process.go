package procmon

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/proctrack/proctrack/cache"
	"github.com/proctrack/proctrack/procmon/process"
)

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

// InitUserNS is the inode of the initial user namespace (see
// Credentials.InHostUserNS).
const InitUserNS = process.InitUserNS

// KernelConnection is the Path of kernel threads.
const KernelConnection = process.KernelConnection

// ProcSelf is the prefix of the calling process's own proc directory.
const ProcSelf = process.ProcSelf

// ProcSelfExe is the calling process's exe link, the first argument AppImage
// runtimes give themselves (CleanArgs replaces it with Path).
const ProcSelfExe = ProcSelf + "exe"

// ProcPrefix is where the proc filesystem is read from.
const ProcPrefix = "/proc"

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

// FindProcess returns the process pid (see process.FindProcess for
// interceptUnknown; as in OpenSnitch, a negative pid with interceptUnknown
// yields a placeholder Process with ID 0, the owner of a connection that
// could not be found, and without it nil). While a Monitor runs, it answers from the monitor's
// cache when the process is there and is still the process that has the pid
// (the cache confirms the start time; one that exited is returned during the
// cache's grace period), with what the cache adds: Parent, Tree and the
// checksums. Otherwise it reads /proc once, as process.FindProcess does, and
// puts what it read into that cache. With no monitor running it only reads
// /proc. It is nil when the pid does not exist or exited while it was read.
//
// With a monitor running the result is the cache's version of the process,
// shared and never changed (see Process): read it freely, and copy it
// (c := *p) before calling a method that changes it (BuildTree,
// GetExtraInfo, ComputeChecksums, ...).
func FindProcess(pid int, interceptUnknown bool) *Process {
	if pid < 0 && interceptUnknown {
		return process.NewProcessEmpty(0, "")
	}
	caches := running.Load()
	if pid < 0 || caches == nil {
		return process.FindProcess(pid, interceptUnknown)
	}
	for _, c := range *caches {
		if item, ok := c.IsInStoreByPID(pid); ok {
			return item.Proc
		}
	}
	p := process.ReadProcess(pid) // all of it: the cache keeps it for the rules
	if p == nil {
		return nil
	}
	return (*caches)[0].Put(p)
}

// running lists the caches of the running monitors, for FindProcess: nil
// when none runs. The slice is replaced, never changed.
var (
	running   atomic.Pointer[[]*cache.EventsStore]
	runningMu sync.Mutex
)

// register adds the cache of a monitor that started to running.
func register(c *cache.EventsStore) {
	runningMu.Lock()
	defer runningMu.Unlock()
	var list []*cache.EventsStore
	if old := running.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, c)
	running.Store(&list)
}

// unregister removes the cache of a monitor that ended from running (once:
// two monitors may share a cache).
func unregister(c *cache.EventsStore) {
	runningMu.Lock()
	defer runningMu.Unlock()
	old := running.Load()
	if old == nil {
		return
	}
	list := slices.Clone(*old)
	if i := slices.Index(list, c); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		running.Store(nil)
		return
	}
	running.Store(&list)
}

// NewProcess returns process pid as OpenSnitch's NewProcess does: its
// details read from /proc (GetDetails), its parent (GetParent) and its
// ancestors (BuildTree: Tree lists them parent first, without the process
// itself). A pid that does not exist, or is not above 0, yields a Process
// with only ID and Comm set (IsAlive tells which). process.NewProcess is the
// identity-only read event sources use.
func NewProcess(pid int, comm string) *Process {
	p := process.NewProcessEmpty(pid, comm)
	if pid <= 0 || p.GetDetails() != nil {
		return p
	}
	p.BuildTree()
	return p
}

// NewProcessEmpty returns a Process with nothing read from /proc.
func NewProcessEmpty(pid int, comm string) *Process { return process.NewProcessEmpty(pid, comm) }

// NewProcessWithParent returns process pid with its details, its parent and
// its ancestors as NewProcess does, the parent being read as NewProcess
// reads it. The parent is the one /proc names: ppid is used only when the
// process is gone (OpenSnitch's proc connector loop passes the thread group
// id here, which is the process itself).
func NewProcessWithParent(pid, ppid int, comm string) *Process {
	p := process.NewProcessEmpty(pid, comm)
	p.PPID = ppid
	if pid <= 0 {
		return p
	}
	_ = p.GetDetails()
	if p.PPID <= 0 || p.PPID == p.ID {
		return p
	}
	parent := NewProcess(p.PPID, "")
	if parent.Starttime == 0 || (p.Starttime != 0 && parent.Starttime > p.Starttime) {
		return p // gone, or the pid names a process younger than its child
	}
	p.Parent = parent
	p.Tree = append(p.Tree[:0], &TreeItem{Key: treeName(parent), Value: uint32(parent.ID)})
	p.Tree = append(p.Tree, parent.Tree...)
	return p
}

// treeName is how an ancestor is named in Tree: its path, its comm when the
// path is unknown or it is a kernel thread.
func treeName(p *Process) string {
	if p.Path == "" || p.Path == KernelConnection {
		return p.Comm
	}
	return p.Path
}

// PIDs lists the pids of every process in /proc, in ascending order.
func PIDs() ([]int, error) { return process.PIDs() }
