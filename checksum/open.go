package checksum

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// openFile is a regular file opened for reading.
type openFile struct {
	fd      int
	st      unix.Stat_t // fstat of f, taken right after opening
	source  string      // path that was opened
	procExe bool        // source is /proc/<pid>/exe
}

func (of *openFile) close() { unix.Close(of.fd) }

// noFileError is returned when no candidate could be hashed. It wraps
// ErrNoFile and every candidate's error.
type noFileError struct {
	what string
	errs []error
}

func (e *noFileError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoFile.Error())
	b.WriteString(" for ")
	b.WriteString(e.what)
	for i, err := range e.errs {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *noFileError) Unwrap() []error {
	return append([]error{ErrNoFile}, e.errs...)
}

// openTarget opens the first usable candidate of t.
func (h *Hasher) openTarget(t Target) (*openFile, error) {
	var errs []error
	var exeSt *unix.Stat_t
	if t.PID > 0 {
		exe := h.procPath(t.PID, "exe")
		if !h.noProcExe {
			of, err := openProcExe(exe)
			if err == nil {
				return of, nil
			}
			errs = append(errs, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(exe, &st); err == nil {
			exeSt = &st
		}
	}
	for i, p := range []string{t.RealPath, t.Path} {
		if p == "" || (i == 1 && p == t.RealPath) {
			continue
		}
		of, err := h.openPath(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if exeSt != nil && (of.st.Dev != exeSt.Dev || of.st.Ino != exeSt.Ino) {
			of.close()
			errs = append(errs, fmt.Errorf("%w: %s (dev %d, inode %d) differs from %s (dev %d, inode %d)",
				ErrMismatch, p, uint64(of.st.Dev), uint64(of.st.Ino),
				h.procPath(t.PID, "exe"), uint64(exeSt.Dev), uint64(exeSt.Ino)))
			continue
		}
		return of, nil
	}
	what := "pid " + strconv.Itoa(t.PID)
	switch {
	case t.PID > 0:
	case t.RealPath != "":
		what = t.RealPath
	case t.Path != "":
		what = t.Path
	default:
		what = "empty target"
	}
	return nil, &noFileError{what: what, errs: errs}
}

// openProcExe opens the kernel's exe link of a process, which is followed
// on purpose: it is not a user-writable symlink but a reference to the
// executing file.
func openProcExe(exe string) (*openFile, error) {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Open(exe, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: exe, Err: err}
	}
	return finishOpen(fd, exe, true)
}

// finishOpen checks that fd (opened for reading) is a regular file and
// wraps it.
func finishOpen(fd int, name string, procExe bool) (*openFile, error) {
	of := &openFile{source: name, procExe: procExe}
	if err := unix.Fstat(fd, &of.st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if err := checkRegular(&of.st, name); err != nil {
		unix.Close(fd)
		return nil, err
	}
	of.fd = fd
	return of, nil
}

func checkRegular(st *unix.Stat_t, name string) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFLNK:
		return fmt.Errorf("%w: %s", ErrSymlink, name)
	case unix.S_IFDIR:
		return fmt.Errorf("%w: %s is a directory", ErrNotRegular, name)
	case unix.S_IFCHR, unix.S_IFBLK:
		return fmt.Errorf("%w: %s is a device", ErrNotRegular, name)
	case unix.S_IFIFO:
		return fmt.Errorf("%w: %s is a FIFO", ErrNotRegular, name)
	case unix.S_IFSOCK:
		return fmt.Errorf("%w: %s is a socket", ErrNotRegular, name)
	default:
		return fmt.Errorf("%w: %s has mode %#o", ErrNotRegular, name, st.Mode)
	}
}

// splitProcRoot recognises <ProcRoot>/<pid>/root/<rest>.
func (h *Hasher) splitProcRoot(p string) (pid int, rest string, ok bool) {
	after, found := strings.CutPrefix(p, h.procRoot+"/")
	if !found {
		return 0, "", false
	}
	num, rest, found := strings.Cut(after, "/")
	if !found || num == "" {
		return 0, "", false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	rest, found = strings.CutPrefix(rest, "root/")
	if !found {
		return 0, "", false
	}
	pid, err := strconv.Atoi(num)
	if err != nil || pid <= 0 {
		return 0, "", false
	}
	return pid, rest, true
}

// openPath opens a user-supplied path without following symbolic links.
func (h *Hasher) openPath(p string) (*openFile, error) {
	var fd int
	var err error
	if pid, rest, ok := h.splitProcRoot(p); ok {
		fd, err = h.openInRoot(pid, rest, p)
	} else {
		fd, err = h.resolve(unix.AT_FDCWD, p, 0, p)
	}
	if err != nil {
		return nil, err
	}
	return reopen(fd, p)
}

// openInRoot resolves rest inside /proc/<pid>/root, as that process sees
// it, without following symbolic links.
func (h *Hasher) openInRoot(pid int, rest, name string) (int, error) {
	root := h.procPath(pid, "root")
	rfd, err := retryEINTR(func() (int, error) {
		return unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	if rest == "" {
		rest = "."
	}
	return h.resolve(rfd, rest, unix.RESOLVE_IN_ROOT, name)
}

// resolve returns an O_PATH descriptor for p relative to dirfd, refusing
// symbolic links in every component. extra adds RESOLVE_* flags; only
// RESOLVE_IN_ROOT is understood by the fallback. name is used in errors.
func (h *Hasher) resolve(dirfd int, p string, extra uint64, name string) (int, error) {
	if p == "" {
		return -1, &os.PathError{Op: "open", Path: name, Err: unix.ENOENT}
	}
	if !h.noOpenat2 {
		how := unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | extra,
		}
		var fd int
		var err error
		for range 8 {
			fd, err = unix.Openat2(dirfd, p, &how)
			// EAGAIN: a concurrent rename or mount raced with a scoped
			// lookup; the kernel asks us to retry.
			if err != unix.EINTR && err != unix.EAGAIN {
				break
			}
		}
		if err != unix.ENOSYS {
			if err != nil {
				return -1, pathErr(name, err)
			}
			return fd, nil
		}
	}
	if extra&unix.RESOLVE_IN_ROOT != 0 {
		// Lexical clean clamps ".." at the root like RESOLVE_IN_ROOT does;
		// with no symlinks allowed, lexical and real resolution agree.
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		if p == "" {
			p = "."
		}
	}
	fd, err := walkNoFollow(dirfd, p)
	if err != nil {
		return -1, pathErr(name, err)
	}
	return fd, nil
}

func pathErr(p string, err error) error {
	if err == unix.ELOOP {
		return fmt.Errorf("%w: %s: %w", ErrSymlink, p, err)
	}
	return &os.PathError{Op: "open", Path: p, Err: err}
}

// walkNoFollow is the openat2-less fallback: it opens p one component at
// a time with O_NOFOLLOW and returns an O_PATH descriptor of the last one
// (which, if it is a symlink, refers to the link itself; the caller's
// fstat refuses it).
func walkNoFollow(dirfd int, p string) (int, error) {
	cur, owned := dirfd, false
	closeCur := func() {
		if owned {
			unix.Close(cur)
		}
	}
	if strings.HasPrefix(p, "/") {
		fd, err := retryEINTR(func() (int, error) {
			return unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		})
		if err != nil {
			return -1, err
		}
		cur, owned = fd, true
	}
	var comps []string
	for c := range strings.SplitSeq(p, "/") {
		if c != "" && c != "." {
			comps = append(comps, c)
		}
	}
	if len(comps) == 0 {
		comps = []string{"."}
	}
	for i, c := range comps {
		flags := unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW
		last := i == len(comps)-1
		if !last {
			flags |= unix.O_DIRECTORY
		}
		fd, err := retryEINTR(func() (int, error) { return unix.Openat(cur, c, flags, 0) })
		if err == unix.ENOTDIR {
			var st unix.Stat_t
			if unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP
			}
		}
		closeCur()
		if err != nil {
			return -1, err
		}
		cur, owned = fd, true
	}
	return cur, nil
}

// reopen turns a verified O_PATH descriptor into a readable one through
// /proc/self/fd, so the file that was checked is the file that is opened
// and non-regular files (devices, FIFOs) are never opened for reading.
// It always closes pathFD.
func reopen(pathFD int, name string) (*openFile, error) {
	defer unix.Close(pathFD)
	var st unix.Stat_t
	if err := unix.Fstat(pathFD, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if err := checkRegular(&st, name); err != nil {
		return nil, err
	}
	fd, err := retryEINTR(func() (int, error) {
		return unix.Open("/proc/self/fd/"+strconv.Itoa(pathFD), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	})
	if err != nil {
		return nil, &os.PathError{Op: "reopen", Path: name, Err: err}
	}
	of, err := finishOpen(fd, name, false)
	if err != nil {
		return nil, err
	}
	if of.st.Dev != st.Dev || of.st.Ino != st.Ino {
		of.close()
		return nil, fmt.Errorf("checksum: reopen %s: file identity changed", name)
	}
	return of, nil
}

func retryEINTR(f func() (int, error)) (int, error) {
	for {
		fd, err := f()
		if err != unix.EINTR {
			return fd, err
		}
	}
}
