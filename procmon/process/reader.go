package process

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

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
}

// NewReader returns a Reader of /proc.
func NewReader() *Reader { return &Reader{r: procfs.NewReader(procRoot)} }

// Identity reads pid's identity from /proc/<pid>/stat: ID, PPID, Starttime,
// StartedAt, Comm, KernelThread and Zombie.
func (r *Reader) Identity(pid int) (*Process, error) {
	s, err := r.r.Stat(pid)
	if err != nil {
		return nil, err
	}
	p := NewProcessEmpty(pid, "")
	p.applyStat(s)
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
	errs := r.image(p, pid)
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
func (r *Reader) Image(pid int) (*Process, error) {
	if err := r.r.Pin(pid); err != nil {
		return nil, err
	}
	defer r.r.Unpin()
	p := NewProcessEmpty(pid, "")
	errs := r.image(p, pid)
	s, err := r.r.Stat(pid)
	if err != nil {
		return nil, err
	}
	p.applyStat(s)
	if err := errors.Join(errs...); err != nil && errors.Is(err, ErrGone) {
		p.Incomplete = true
		return p, err
	}
	return p, nil
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

// image reads the executable and the arguments of pid into p, as one pair:
// the executable is read again after the arguments, and when an exec came
// in between (the link changed) both are read again, so that the
// arguments of one image are never given to another.
func (r *Reader) image(p *Process, pid int) []error {
	var errs []error
	link, err := r.r.Exe(pid)
	for try := 0; ; try++ {
		if err == nil {
			p.setExeFast(link)
		} else {
			errs = append(errs, err)
		}
		if args, cut, err := r.r.Cmdline(pid, DefaultMaxArgsBytes); err == nil {
			p.setArgs(args, cut)
		} else {
			errs = append(errs, err)
		}
		again, err2 := r.r.Exe(pid)
		if err != nil || err2 != nil || again == link || try == 1 {
			return errs
		}
		link, err, errs = again, nil, errs[:0]
	}
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
