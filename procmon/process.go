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

// KernelConnection is the Path of kernel threads.
const KernelConnection = process.KernelConnection

// ProcSelf is the prefix of the calling process's own proc directory.
const ProcSelf = process.ProcSelf

// Checksum algorithm names, the keys of Process.Checksums.
const (
	HashMD5    = process.HashMD5
	HashSHA1   = process.HashSHA1
	HashSHA256 = process.HashSHA256
)

// ErrGone reports a process that exited (or whose pid was reused) while it
// was being read.
var ErrGone = process.ErrGone

// FindProcess returns the process pid (see process.FindProcess for
// interceptUnknown). While a Monitor runs, it answers from the monitor's
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
	caches := running.Load()
	if pid < 0 || caches == nil {
		return process.FindProcess(pid, interceptUnknown)
	}
	for _, c := range *caches {
		if item, ok := c.IsInStoreByPID(pid); ok {
			return item.Proc
		}
	}
	p := process.FindProcess(pid, interceptUnknown)
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
