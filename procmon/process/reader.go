package process

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/intern"
	"github.com/proctrack/proctrack/internal/procfs"
)

// Reader reads processes on an event source's hot path, with raw reads into
// a reused buffer: Exec reads the four files an exec event needs at once
// (stat, status, the exe link, cmdline) and nothing else; Image the three
// that name it and tell its identity; Caps the capability sets, with one
// system call. A Reader is not
// safe for concurrent use; give each reading goroutine its own.
type Reader struct {
	r *procfs.Reader
	// cmd is the last cmdline read (at most maxMemoArgs bytes), args the
	// list made of it, given again for the same bytes (a storm of one
	// command allocates no list per exec): read-only, as the Args of a
	// cached process.
	cmd  []byte
	args []string
	// afterArgs, when set, runs between image's reads of the arguments
	// and what checks them: tests make an exec come there.
	afterArgs func()
}

// NewReader returns a Reader of /proc.
// The exe links and names it reads are interned (intern.Bytes: no
// allocation for a string seen before).
func NewReader() *Reader {
	r := procfs.NewReader(procRoot)
	r.Strings = intern.Bytes
	return &Reader{r: r}
}

// maxMemoArgs bounds the cmdline the Reader keeps for the next read.
const maxMemoArgs = 4096

// Identity reads pid's identity from /proc/<pid>/stat: ID, PPID, Starttime,
// StartedAt, Comm, KernelThread and Zombie.
func (r *Reader) Identity(pid int) (*Process, error) {
	var s procfs.Stat
	if err := r.r.StatTo(pid, &s); err != nil {
		return nil, err
	}
	p := &Process{ID: pid}
	p.applyStat(&s)
	return p, nil
}

// Exec reads what an exec event needs while the process may be about to
// exit: identity, credentials, binary path and arguments. CWD, Env, NS,
// Root, Cgroup, RealPath checks and the exe's device and inode are left to
// GetDetails (RealPath is Path meanwhile, and a " (deleted)" link is taken
// at its word). A process gone after its identity was read is returned with
// what was read and Incomplete set, and the error matching ErrGone.
func (r *Reader) Exec(pid int) (*Process, error) {
	p, err := r.Identity(pid)
	if err != nil {
		return nil, err
	}
	if p.KernelThread {
		return p, nil
	}
	// What names the process first: a short-lived one may be gone soon.
	link, errs, exeErr := r.image(p, pid)
	if exeErr == nil {
		errs = r.recheck(p, pid, link, errs)
	}
	if s, err := r.r.Status(pid); err == nil {
		p.applyStatus(s)
	} else {
		errs = append(errs, err)
	}
	err = errors.Join(errs...)
	if err != nil && errors.Is(err, ErrGone) {
		p.Incomplete = true
		return p, err
	}
	return p, nil
}

// Creds reads the credentials of pid from /proc/<pid>/status.
func (r *Reader) Creds(pid int) (Credentials, error) {
	s, err := r.r.Status(pid)
	if err != nil {
		return Credentials{}, err
	}
	var p Process
	p.applyStatus(s)
	return p.Creds, nil
}

// Image reads what names a process that has just exec'd, in the order that
// names most of the short-lived: the binary's path and the arguments (see
// image), then the identity from /proc/<pid>/stat (ID, Starttime,
// StartedAt, PPID, Comm), which tells whose image was read: all through
// the /proc/<pid> directory opened first, which holds one process (a pid
// taken by another process meanwhile is not read). The credentials are
// not read (Creds reads them). It returns nil and the error when the stat
// read failed (the process is gone), and p with Incomplete set and the
// error matching ErrGone when the image could not be read whole.
//
// The stat read, after the arguments, also stands for image's second read
// of the exe link when its comm is the link's name (commNames): comm is
// the name of the file the last exec ran (its first 15 bytes), so no exec
// of a binary of another name came between the link's read and the stat
// read, the arguments' in between. When they differ (a script: comm names
// the script, the link its interpreter; a binary run through a symbolic
// link of another name; a process that renamed itself) the link is read
// again, as image does. What neither check sees is an exec, within those
// few microseconds, of the same binary again or of another of the same
// name (first 15 bytes) elsewhere: its arguments are then given the path
// read before it.
func (r *Reader) Image(pid int) (*Process, error) {
	if err := r.r.Pin(pid); err != nil {
		return nil, err
	}
	defer r.r.Unpin()
	return r.ImageOfKnown(pid)
}

// ImageOfKnown is Image without the pin of /proc/<pid> (its open and
// close, about a tenth of an exec's cost in a storm), for a caller that
// knew the process before its exec and checks that the identity returned
// is that process's (the child of a fork it saw, a cached live process):
// each file is looked up by path, so a pid taken by another process
// between the reads can give the reads of two processes. The stat read is
// the last; if it shows the known process, that process held the pid at
// every earlier read too (a pid names one process from its fork until it
// is reaped, and the reads come after the exec, so after the fork), and
// the image is that process's. Otherwise the caller must not use the
// image.
func (r *Reader) ImageOfKnown(pid int) (*Process, error) {
	p := &Process{ID: pid}
	link, errs, exeErr := r.image(p, pid)
	var s procfs.Stat
	if err := r.r.StatTo(pid, &s); err != nil {
		return nil, err
	}
	if exeErr == nil && !commNames(s.Comm, link) {
		errs = r.recheck(p, pid, link, errs)
	}
	p.applyStat(&s)
	if err := joinErrs(errs); err != nil && errors.Is(err, ErrGone) {
		p.Incomplete = true
		return p, err
	}
	return p, nil
}

// joinErrs is errors.Join, without its allocation for one error.
func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// CredsOfChild is Creds for the child of ppid: when pid's parent is another
// process (the pid names another process now, or the parent exited) it
// returns an error matching ErrGone.
func (r *Reader) CredsOfChild(pid, ppid int) (Credentials, error) {
	s, err := r.r.Status(pid)
	if err != nil {
		return Credentials{}, err
	}
	if s.PPID != ppid {
		return Credentials{}, fmt.Errorf("process %d: parent %d, not %d: %w", pid, s.PPID, ppid, ErrGone)
	}
	var p Process
	p.applyStatus(s)
	return p.Creds, nil
}

// Caps returns the inheritable, permitted and effective capability sets
// of pid as they are now, with one capget(2): no file is opened, and the
// kernel formats nothing, where /proc/<pid>/status costs three system calls
// and a page of text. It tells nothing else (no ids, no bounding or
// ambient set) and, as any read by pid, not which process holds the pid: a
// pid with no process is an error matching ErrGone.
func (r *Reader) Caps(pid int) (inh, prm, eff CapSet, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3, Pid: int32(pid)}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		if err == unix.ESRCH {
			return 0, 0, 0, fmt.Errorf("capget %d: %w: %w", pid, ErrGone, err)
		}
		return 0, 0, 0, fmt.Errorf("capget %d: %w", pid, err)
	}
	caps := func(lo, hi uint32) CapSet { return CapSet(uint64(hi)<<32 | uint64(lo)) }
	return caps(data[0].Inheritable, data[1].Inheritable), caps(data[0].Permitted, data[1].Permitted),
		caps(data[0].Effective, data[1].Effective), nil
}

// image reads the executable and the arguments of pid into p. It returns
// the exe link read and its error; errs holds every read's error. The
// pair is one image's only when checked after (recheck, or Image's comm).
func (r *Reader) image(p *Process, pid int) (link string, errs []error, exeErr error) {
	link, exeErr = r.r.Exe(pid)
	if exeErr == nil {
		p.setExeFast(link)
	} else {
		errs = append(errs, exeErr)
		if errors.Is(exeErr, ErrGone) {
			// No memory left (exiting, a zombie, a kernel thread) or no
			// process: cmdline is empty, not worth its three calls (a
			// storm's process gone before its read, a third of them).
			return link, errs, exeErr
		}
	}
	if err := r.readArgs(p, pid); err != nil {
		errs = append(errs, err)
	}
	if r.afterArgs != nil {
		r.afterArgs()
	}
	return link, errs, exeErr
}

// recheck makes what image read (link, and errs) one pair: the executable
// is read again, and when an exec came in between (the link changed) both
// are read again, the new link and then the arguments, so that the
// arguments of one image are not given to another (but for a second exec
// within microseconds). It returns the errors of the pair kept.
func (r *Reader) recheck(p *Process, pid int, link string, errs []error) []error {
	again, err := r.r.Exe(pid)
	if err != nil || again == link {
		return errs
	}
	p.setExeFast(again)
	errs = errs[:0]
	if err := r.readArgs(p, pid); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// readArgs reads the arguments of pid into p: the list the last read made
// when the bytes are the same.
func (r *Reader) readArgs(p *Process, pid int) error {
	b, cut, err := r.r.CmdlineBytes(pid, DefaultMaxArgsBytes)
	if err != nil {
		return err
	}
	if !cut && r.args != nil && bytes.Equal(b, r.cmd) {
		p.setArgs(r.args, false)
		return nil
	}
	args := procfs.SplitNul(b)
	if !cut && len(args) > 0 && len(b) <= maxMemoArgs {
		r.cmd, r.args = append(r.cmd[:0], b...), args
	}
	p.setArgs(args, cut)
	return nil
}

// commMax is the length of a task's comm at most (TASK_COMM_LEN less its
// NUL).
const commMax = 15

// commNames reports whether comm, a process's name from its stat, is the
// name exec gave it for the binary of the exe link: the link's last
// component (without " (deleted)"), cut to commMax bytes as the kernel
// cuts it.
func commNames(comm, link string) bool {
	link = strings.TrimSuffix(link, deletedSuffix)
	name := link[strings.LastIndexByte(link, '/')+1:]
	if len(name) > commMax {
		name = name[:commMax]
	}
	return comm != "" && comm == name
}

// setExeFast sets Path from an exe link without further system calls.
func (p *Process) setExeFast(link string) {
	if trimmed, ok := strings.CutSuffix(link, deletedSuffix); ok {
		link = trimmed
		p.ExeDeleted = true
	}
	p.Path, p.RealPath = link, link
	if strings.HasPrefix(link, "/memfd:") {
		p.Fileless = true
	}
}
