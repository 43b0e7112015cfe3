package process

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/procfs"
)

// ErrGone reports that a process exited, or its pid was taken by another
// process, while it was being read. It matches internal errors from /proc
// reads too, so errors.Is(err, ErrGone) is the one test callers need.
var ErrGone = procfs.ErrGone

// ErrMalformed reports a /proc file that could not be parsed.
var ErrMalformed = procfs.ErrMalformed

// procRoot is where /proc is mounted. Tests point it at fixture trees.
var procRoot = procfs.DefaultRoot

// Key identifies a process across its life and across pid reuse: the pid and
// the start time in clock ticks since boot. Every method derives the same Key
// (the eBPF method converts the kernel's start time to the same ticks).
//
// Ticks are 10 ms, so a pid reused within the same tick as its previous
// owner started would have the same Key. A natural reuse needs the pid space
// to wrap first (tens of thousands of forks, seconds at the least); only a
// reuse forced through /proc/sys/kernel/ns_last_pid can be that fast.
type Key struct {
	PID        int
	StartTicks uint64
}

// String returns the stable id string of the process, "<pid>-<start ticks>".
// It is the same whichever method saw the process.
func (k Key) String() string {
	return strconv.Itoa(k.PID) + "-" + strconv.FormatUint(k.StartTicks, 10)
}

// TreeItem is one ancestor in Process.Tree: Key is the ancestor's path (its
// comm when the path is unknown) and Value its pid, the shape of the seed
// API's StringInt.
type TreeItem struct {
	Key   string
	Value uint32
}

// Process holds the details of a process. The first block of fields is the
// seed API's; the rest is what proctrack adds.
//
// A Process is a plain value with no lock. One that the process cache holds,
// or that an Event, a cache lookup or a Parent link hands out, is never
// changed again: the cache replaces it with a new Process when the process
// changes (exec, credentials, name, details, checksums), so it can be read
// from any goroutine without locks and always shows one moment of the
// process. To change one, copy it first (c := *p); Args, Env, Checksums and
// Tree may be shared with other processes: replace them, never write into
// them. The methods that change a Process (GetDetails, the Read* methods,
// ComputeChecksums, BuildTree, ...) are for a Process the caller owns: one
// from FindProcess, NewProcess or such a copy.
type Process struct {
	// Statm is the memory usage from /proc/<pid>/statm (GetExtraInfo).
	Statm *Statm
	// Parent is the parent process, when known (GetParent, or the cache:
	// there, the parent as it was when this process was cached).
	Parent *Process
	// IOStats is /proc/<pid>/io (GetExtraInfo; needs privilege for others).
	IOStats *IOStats
	// NetStats are the totals of /proc/<pid>/net/dev (GetExtraInfo).
	NetStats *NetStats
	// Env is the environment (ReadEnv). A value may be empty or contain '='.
	Env map[string]string
	// Checksums maps an algorithm (HashMD5, HashSHA1, HashSHA256) to the
	// hex digest of the binary.
	Checksums map[string]string
	// Status, Stat, Stack and Maps are the raw /proc/<pid> files of those
	// names (GetExtraInfo; Maps also from ReadMaps).
	Status, Stat, Stack, Maps string
	// Comm is the task name (/proc/<pid>/comm, at most 15 bytes).
	Comm string
	// Path is the absolute path to the binary as /proc/<pid>/exe names it,
	// without the " (deleted)" suffix; KernelConnection for kernel threads;
	// "" when it cannot be read (no privilege, zombie).
	Path string
	// RealPath is a path that opens the binary from this process's mount
	// namespace: Path itself when it names the same file there, else Path
	// under /proc/<pid>/root (a process in another mount namespace, such as
	// a container). FindProcess leaves it Path until checked (see ExeFile).
	RealPath string
	// CWD is the working directory (/proc/<pid>/cwd).
	CWD string
	// Tree lists the ancestors, parent first, up to pid 1 (BuildTree).
	Tree []*TreeItem
	// Descriptors are the open file descriptors (GetExtraInfo).
	Descriptors []*Descriptor
	// Args is the argument list exactly as /proc/<pid>/cmdline holds it;
	// an argument containing spaces stays one element. It may or may not
	// start with the path of the binary.
	Args []string
	// Starttime is the start time in clock ticks since boot
	// (/proc/<pid>/stat field 22); StartedAt is the same instant as
	// wall-clock time.
	Starttime int64
	// ID is the pid, PPID the parent's pid.
	ID, PPID int
	// UID is the effective user id, what ps shows as UID; the whole set is
	// in Creds. FindProcess leaves both unread (see Credentials).
	UID int

	// StartedAt is the wall-clock time the process started.
	StartedAt time.Time
	// Creds are the full credentials, from /proc/<pid>/status.
	Creds Credentials
	// NS holds the namespace inodes.
	NS Namespaces
	// Root is where the process's root directory is, as /proc/<pid>/root
	// names it: "/" unless chrooted or in another mount namespace.
	Root string
	// Cgroup is the cgroup path (v2 when the process is in the unified
	// hierarchy); ContainerID and ContainerRuntime are set when the path
	// names a container (docker, containerd, cri-o, podman, kubepods).
	Cgroup, ContainerID, ContainerRuntime string
	// ExeDev and ExeInode identify the binary's file (stat of
	// /proc/<pid>/exe); 0 when unknown (FindProcess: see ExeFile).
	ExeDev, ExeInode uint64
	// KernelThread is set for kernel threads (PF_KTHREAD).
	KernelThread bool
	// Zombie is set for a process that exited and was not reaped yet.
	Zombie bool
	// ExeDeleted is set when the binary was deleted (or replaced) after the
	// process started; Path is then where it used to be.
	ExeDeleted bool
	// Fileless is set when the binary is a memfd, not a file on disk.
	Fileless bool
	// Incomplete is set when the process exited before everything could be
	// read: the fields that were read are true, the rest are empty.
	Incomplete bool
	// ArgsTruncated is set when Args holds only the beginning of the
	// argument list, EnvTruncated when Env lacks variables: what is kept of
	// each is bounded (DefaultMaxArgsBytes, DefaultMaxEnvBytes, or the
	// process cache's bounds).
	ArgsTruncated, EnvTruncated bool

	// lazy is set by FindProcess, which leaves Creds, UID, NS, Root,
	// Cgroup, ContainerID, ContainerRuntime, ExeDev, ExeInode and the check
	// of RealPath unread: they are read once, on first use (see Complete).
	// Copies share it; what it holds never changes once read.
	lazy *lazyDetails
}

// NewProcessEmpty returns a Process with the given pid and comm and nothing
// read from /proc.
func NewProcessEmpty(pid int, comm string) *Process {
	return &Process{ID: pid, Comm: comm, Checksums: make(map[string]string)}
}

// NewProcess returns a Process for pid with its identity (ppid, start time,
// comm when comm is "") read from /proc/<pid>/stat. A pid that does not exist
// yields a Process with only ID and Comm set; IsAlive tells which.
func NewProcess(pid int, comm string) *Process {
	p := NewProcessEmpty(pid, comm)
	if pid > 0 {
		_ = p.readStat()
	}
	return p
}

// NewProcessWithParent returns a Process with pid, ppid and comm set and
// nothing read from /proc.
func NewProcessWithParent(pid, ppid int, comm string) *Process {
	p := NewProcessEmpty(pid, comm)
	p.PPID = ppid
	return p
}

// FindProcess reads the process pid from /proc: identity (the stat file:
// start time, parent, name), path, arguments, working directory and
// environment, what OpenSnitch's FindProcess reads. What proctrack reads
// beyond that is left for later: the credentials (Creds and UID, the
// status file), the namespaces, root and cgroup (NS, Root, Cgroup,
// ContainerID, ContainerRuntime), and the binary's file (ExeDev, ExeInode,
// and RealPath, which is Path until then). They are read once, when first
// asked for through Credentials, Namespaces, RootDir, CgroupInfo, ExeFile
// or Complete (the process cache completes a Process it is given), from
// the process FindProcess read or not at all. It returns nil when the pid
// does not exist or the process exited while it was read. When pid is
// negative (an owner that could not be found) and interceptUnknown is true,
// it returns a placeholder Process with ID -1 and no details instead of
// nil, so a caller can still apply its rules to it.
func FindProcess(pid int, interceptUnknown bool) *Process {
	if pid < 0 {
		if interceptUnknown {
			return NewProcessEmpty(-1, "")
		}
		return nil
	}
	p := NewProcessEmpty(pid, "")
	if err := p.read(false); err != nil {
		return nil
	}
	return p
}

// ReadProcess is FindProcess with every detail read at once (namespaces,
// root and cgroup included): what a process cache keeps. It returns nil
// when the pid does not exist or the process exited while it was read.
func ReadProcess(pid int) *Process {
	if pid < 0 {
		return nil
	}
	p := NewProcessEmpty(pid, "")
	if err := p.read(true); err != nil {
		return nil
	}
	return p
}

// Key returns the process's identity.
func (p *Process) Key() Key { return Key{PID: p.ID, StartTicks: uint64(p.Starttime)} }

// GetDetails reads the details of the process from /proc: identity,
// credentials, path, arguments, working directory, environment, namespaces
// and cgroup. When the Process already has a start time, a pid now used by
// another process is an error matching ErrGone, and nothing is changed. If
// the process exits while it is read, Incomplete is set and the error matches
// ErrGone. Files the caller may not read are left empty without error.
func (p *Process) GetDetails() error { return p.read(true) }

// readers are the procfs Readers of read: each holds a buffer the reads
// reuse.
var readers sync.Pool

// getReader returns a Reader of procRoot from readers, or a new one; give
// it back with readers.Put.
func getReader() *procfs.Reader {
	if r, ok := readers.Get().(*procfs.Reader); ok && r.Root() == procRoot {
		return r
	}
	return procfs.NewReader(procRoot)
}

// read is GetDetails; without full it leaves the credentials, namespaces,
// root, cgroup and the binary's file to be read on first use (lazy).
//
// Every file is read through the process's pinned /proc directory, so all
// are of the process whose stat is read first, even if it exits and its
// pid is reused meanwhile (the reads then fail). The binary's link is read
// last: a process whose exe link is still there has not yet released its
// memory on its way out (which precedes releasing its working directory and
// becoming a zombie), so everything read before was read from the live
// process. Where the link cannot be read, stat is read again to tell.
func (p *Process) read(full bool) error {
	r := getReader()
	defer readers.Put(r)
	if err := r.Pin(p.ID); err != nil {
		return err
	}
	defer r.Unpin()
	s, err := r.Stat(p.ID)
	if err != nil {
		return err
	}
	if p.Starttime != 0 && uint64(p.Starttime) != s.StartTicks {
		return fmt.Errorf("%w: pid %d was reused", ErrGone, p.ID)
	}
	p.applyStat(s)
	if full {
		st, err := r.Status(p.ID)
		if err != nil {
			if errors.Is(err, ErrGone) {
				return p.gone(err)
			}
			return err
		}
		p.applyStatus(st)
	}
	// A zombie has no exe, cmdline, environ or cwd left to read; a kernel
	// thread never had them. Errors of the reads below are not checked one by
	// one: a file the caller may not read stays empty, and a process that
	// vanished meanwhile is caught at the end.
	live := !p.Zombie && !p.KernelThread
	if live {
		if args, cut, err := r.Cmdline(p.ID, DefaultMaxArgsBytes); err == nil {
			p.Args, p.ArgsTruncated = args, cut
			if cut {
				// The last element is the beginning of an argument and has
				// no NUL: count one for it, as BoundArgs does.
				p.Args, _ = BoundArgs(args, DefaultMaxArgsBytes)
			}
		}
		if cwd, err := r.Readlink(p.ID, "cwd"); err == nil {
			p.CWD = strings.TrimSuffix(cwd, deletedSuffix)
		}
		if env, cut, err := r.Environ(p.ID, DefaultMaxEnvBytes); err == nil {
			p.Env, p.EnvTruncated = env, cut
		}
	}
	p.lazy = nil
	if full {
		p.readRest(r)
	} else {
		p.lazy = new(lazyDetails)
	}
	if live {
		if link, err := r.Exe(p.ID); err == nil {
			p.Path = link
			if full || strings.HasSuffix(link, deletedSuffix) {
				p.CleanPath() // stat calls that FindProcess leaves to exeFile
			} else {
				p.RealPath = link
				if p.Fileless = strings.HasPrefix(link, "/memfd:"); p.Fileless {
					p.RealPath = p.procPath("exe")
				}
			}
			p.CleanArgs()
			return nil
		}
	}
	return p.confirmWith(r)
}

// readRest reads what FindProcess leaves for later: root, namespaces and
// cgroup.
func (p *Process) readRest(r *procfs.Reader) {
	if !p.Zombie && !p.KernelThread {
		if root, err := r.Readlink(p.ID, "root"); err == nil {
			p.Root = root
		}
	}
	ns := r.Namespaces(p.ID)
	p.NS = Namespaces{PID: ns[0], Mnt: ns[1], Net: ns[2], User: ns[3],
		UTS: ns[4], IPC: ns[5], Cgroup: ns[6], Time: ns[7]}
	p.Creds.UserNS = p.NS.User
	if c, err := r.Cgroup(p.ID); err == nil {
		p.Cgroup, p.ContainerID, p.ContainerRuntime = c.Path, c.ContainerID, c.Runtime
	}
}

// lazyDetails holds what FindProcess leaves unread, read once on first
// use; after that it never changes, so copies of a Process share it.
type lazyDetails struct {
	once sync.Once
	// rest holds Creds, UID, NS, Root, Cgroup, ContainerID,
	// ContainerRuntime, RealPath, ExeDev and ExeInode as read; gone is set
	// when the process had exited (or its pid was reused) by then, and the
	// fields are then empty but for RealPath, which stays Path.
	rest *Process
	gone bool
}

// rest returns the lazily read details, reading them on the first call.
func (p *Process) rest() *Process {
	l := p.lazy
	l.once.Do(func() {
		q := &Process{ID: p.ID, Starttime: p.Starttime, Zombie: p.Zombie, KernelThread: p.KernelThread,
			Path: p.Path, RealPath: p.RealPath, Fileless: p.Fileless}
		// Through the pinned directory, so that nothing is read from
		// another process that has the pid by now.
		r := getReader()
		defer readers.Put(r)
		if r.Pin(p.ID) == nil {
			defer r.Unpin()
			if q.confirmWith(r) == nil {
				if st, err := r.Status(p.ID); err == nil {
					q.applyStatus(st)
					q.readRest(r)
					q.exeFile(r)
					l.rest = q
					return
				}
			}
		}
		l.rest, l.gone = &Process{RealPath: p.RealPath}, true
	})
	return l.rest
}

// exeFile sets ExeDev, ExeInode and RealPath from a stat of the binary
// (/proc/<pid>/exe), as CleanPath does for a Path whose " (deleted)"
// suffix is settled.
func (p *Process) exeFile(r *procfs.Reader) {
	if p.KernelThread || p.Path == "" || p.Path == KernelConnection {
		return
	}
	var exe unix.Stat_t
	haveExe := r.StatAt(p.ID, "exe", &exe) == nil
	if haveExe {
		p.ExeDev, p.ExeInode = exe.Dev, exe.Ino
	}
	if !p.Fileless {
		p.setRealPath(haveExe, &exe)
	}
}

// Complete reads into p what FindProcess left for later (Creds, UID, NS,
// Root, Cgroup, ContainerID, ContainerRuntime, ExeDev, ExeInode, and the
// check of RealPath), once: a copy that shares the read finds it done. It
// is a no-op for a Process read otherwise. If the process has exited (or
// its pid was reused) since FindProcess, those fields stay empty (RealPath
// stays Path) and Incomplete is set. Like every method that changes a
// Process, it is for a Process the caller owns: the accessors
// (Credentials, Namespaces, RootDir, CgroupInfo, ExeFile) read a shared one
// without changing it.
func (p *Process) Complete() {
	if p.lazy == nil {
		return
	}
	q := p.rest()
	p.Creds, p.UID, p.NS, p.Root = q.Creds, q.UID, q.NS, q.Root
	p.Cgroup, p.ContainerID, p.ContainerRuntime = q.Cgroup, q.ContainerID, q.ContainerRuntime
	p.RealPath, p.ExeDev, p.ExeInode = q.RealPath, q.ExeDev, q.ExeInode
	if p.lazy.gone {
		p.Incomplete = true
	}
	p.lazy = nil
}

// Credentials returns Creds, reading them first (once) for a Process from
// FindProcess: the credentials the process has when first asked for. ok
// is false when they are unknown: the process had exited (or its pid was
// reused) by then. A zero Credentials is root's, so check ok before
// trusting it. For a Process read otherwise it returns Creds as they are,
// and ok.
func (p *Process) Credentials() (c Credentials, ok bool) {
	if p.lazy == nil {
		return p.Creds, true
	}
	q := p.rest()
	return q.Creds, !p.lazy.gone
}

// Namespaces returns NS, reading it first (once) for a Process from
// FindProcess; Creds.UserNS is its User.
func (p *Process) Namespaces() Namespaces {
	if p.lazy == nil {
		return p.NS
	}
	return p.rest().NS
}

// RootDir returns Root, reading it first (once) for a Process from
// FindProcess.
func (p *Process) RootDir() string {
	if p.lazy == nil {
		return p.Root
	}
	return p.rest().Root
}

// CgroupInfo returns Cgroup, ContainerID and ContainerRuntime, reading them
// first (once) for a Process from FindProcess.
func (p *Process) CgroupInfo() (cgroup, containerID, runtime string) {
	q := p
	if p.lazy != nil {
		q = p.rest()
	}
	return q.Cgroup, q.ContainerID, q.ContainerRuntime
}

// ExeFile returns RealPath, ExeDev and ExeInode, reading them first (once)
// for a Process from FindProcess (a stat of the binary, and of Path to
// tell whether it names the same file from this process's root).
func (p *Process) ExeFile() (realPath string, dev, inode uint64) {
	q := p
	if p.lazy != nil {
		q = p.rest()
	}
	return q.RealPath, q.ExeDev, q.ExeInode
}

// confirmWith re-reads the start time and state: if the process exited
// (even if not reaped yet) or the pid was reused during the reads, the
// details are not the process's.
func (p *Process) confirmWith(r *procfs.Reader) error {
	s, err := r.Stat(p.ID)
	if err != nil {
		return p.gone(err)
	}
	if s.StartTicks != uint64(p.Starttime) {
		return p.gone(fmt.Errorf("pid %d was reused", p.ID))
	}
	if !p.Zombie && (s.State == 'Z' || s.State == 'X') {
		return p.gone(fmt.Errorf("pid %d exited", p.ID))
	}
	return nil
}

// confirm is confirmWith a Reader of its own.
func (p *Process) confirm() error {
	r := getReader()
	defer readers.Put(r)
	return p.confirmWith(r)
}

func (p *Process) gone(err error) error {
	p.Incomplete = true
	if errors.Is(err, ErrGone) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrGone, err)
}

// readStat reads identity fields from /proc/<pid>/stat. If the Process has a
// start time already and the pid now belongs to another process, it returns
// an error matching ErrGone and changes nothing.
func (p *Process) readStat() error {
	s, _, err := procfs.ReadStat(procRoot, p.ID)
	if err != nil {
		return err
	}
	if p.Starttime != 0 && uint64(p.Starttime) != s.StartTicks {
		return fmt.Errorf("%w: pid %d was reused", ErrGone, p.ID)
	}
	p.applyStat(s)
	return nil
}

// applyStat sets the identity fields from a parsed stat file.
func (p *Process) applyStat(s *procfs.Stat) {
	p.Starttime = int64(s.StartTicks)
	p.StartedAt = procfs.TicksToTime(bootTime(), s.StartTicks)
	p.PPID = s.PPID
	p.Comm = s.Comm
	p.KernelThread = s.IsKernelThread()
	p.Zombie = s.State == 'Z' || s.State == 'X'
	if p.KernelThread {
		p.Path = KernelConnection
		p.RealPath = ""
	}
}

// applyStatus sets Creds and UID from a parsed status file.
func (p *Process) applyStatus(s *procfs.Status) {
	p.Creds = Credentials{
		UID: s.UIDs[0], EUID: s.UIDs[1], SUID: s.UIDs[2], FSUID: s.UIDs[3],
		GID: s.GIDs[0], EGID: s.GIDs[1], SGID: s.GIDs[2], FSGID: s.GIDs[3],
		Groups:         s.Groups,
		CapInheritable: CapSet(s.CapInh),
		CapPermitted:   CapSet(s.CapPrm),
		CapEffective:   CapSet(s.CapEff),
		CapBounding:    CapSet(s.CapBnd),
		CapAmbient:     CapSet(s.CapAmb),
		NoNewPrivs:     s.NoNewPrivs,
		Seccomp:        s.Seccomp,
		UserNS:         p.NS.User,
	}
	p.UID = int(s.UIDs[1])
}

// procPath returns /proc/<pid>/<name> for this process.
func (p *Process) procPath(name string) string { return procfs.Path(procRoot, p.ID, name) }

// bootTime is computed once: the instant start ticks count from.
func bootTime() time.Time { return procfs.Boot() }

// PIDs lists the pids of every process in /proc, in ascending order.
func PIDs() ([]int, error) { return procfs.PIDs(procRoot) }

// CurrentKey returns the Key of the process that now has pid. A pid not in
// use, or used by a process that exited and was not reaped yet (a zombie),
// is an error matching ErrGone.
func CurrentKey(pid int) (Key, error) {
	s, _, err := procfs.ReadStat(procRoot, pid)
	if err != nil {
		return Key{}, err
	}
	if s.State == 'Z' || s.State == 'X' {
		return Key{PID: pid, StartTicks: s.StartTicks}, fmt.Errorf("%w: pid %d is a zombie", ErrGone, pid)
	}
	return Key{PID: pid, StartTicks: s.StartTicks}, nil
}
