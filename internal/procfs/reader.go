package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reader reads /proc files with raw system calls into one reusable buffer:
// the event path of a monitor, where each exec costs a few reads and every
// microsecond counts (os.ReadFile costs an fstat and allocations more). A
// Reader is not safe for concurrent use.
type Reader struct {
	// Strings, when set, makes the strings of a link Readlink reads and
	// of the comm StatTo reads from their bytes, which it must not keep
	// (intern.Bytes: no allocation for a string it made before); nil: a
	// copy.
	Strings func([]byte) string

	root string
	buf  []byte
	name []byte // the NUL-terminated path of the last file opened
	dir  int    // the pinned process's directory (Pin), or -1
	pid  int    // the pinned pid
}

// NewReader returns a Reader of the proc tree at root.
func NewReader(root string) *Reader {
	return &Reader{root: root, buf: make([]byte, 16<<10), dir: -1}
}

// Pin opens the directory <root>/<pid> and reads pid's files through it
// until Unpin: the directory holds the process it named when opened, so
// every read is of that process, and fails (ErrGone) once it has been
// reaped, even if its pid names another process by then. It costs two
// system calls (open, and close at Unpin) and saves the path walk of
// every read.
func (r *Reader) Pin(pid int) error {
	r.Unpin()
	dir, name := r.cpath(pid, "")
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, dir, uintptr(unsafe.Pointer(name)),
		unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0, 0, 0)
	if errno != 0 {
		return r.fail("open", pid, "", errno)
	}
	r.dir, r.pid = int(fd), pid
	return nil
}

// Unpin closes the directory Pin opened, if any.
func (r *Reader) Unpin() {
	if r.dir >= 0 {
		unix.Close(r.dir)
		r.dir = -1
	}
}

// fail returns the error of a failed system call (op) on <root>/<pid>/<name>
// (name "": the directory), matching ErrGone when it means the process is
// not there, as classify does.
func (r *Reader) fail(op string, pid int, name string, err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		return &readError{op: op, root: r.root, name: name, pid: pid, errno: errno}
	}
	path := r.path(pid, name)
	if name == "" {
		path = path[:len(path)-1]
	}
	return classify(fmt.Errorf("%s %s: %w", op, path, err))
}

// readError is a Reader's error of a system call that failed with an
// errno. Its text is made only when asked for: on a monitor's event path a
// process gone before its read is common, and formatting the error cost
// more than the failed call.
type readError struct {
	op, root, name string
	pid            int
	errno          syscall.Errno
}

// gone reports whether the error means the process is not there (see
// classify).
func (e *readError) gone() bool { return e.errno == syscall.ENOENT || e.errno == syscall.ESRCH }

// Error returns the text classify gives: "process gone: open /proc/1/stat:
// no such file or directory".
func (e *readError) Error() string {
	path := e.root + "/" + strconv.Itoa(e.pid)
	if e.name != "" {
		path += "/" + e.name
	}
	msg := e.op + " " + path + ": " + e.errno.Error()
	if e.gone() {
		return ErrGone.Error() + ": " + msg
	}
	return msg
}

// Is reports whether the error matches target: ErrGone (when gone) or its
// errno (without the allocation of an Unwrap() []error).
func (e *readError) Is(target error) bool {
	return target == ErrGone && e.gone() || target == e.errno
}

// Unwrap returns the errno.
func (e *readError) Unwrap() error { return e.errno }

// Root returns the proc root the Reader reads.
func (r *Reader) Root() string { return r.root }

// path returns <root>/<pid>/<name>.
func (r *Reader) path(pid int, name string) string {
	return r.root + "/" + strconv.Itoa(pid) + "/" + name
}

// cpath returns a directory descriptor and <root>/<pid>/<name> relative to
// it, NUL-terminated in r.name and valid until the next call: the system
// calls below take it without the allocation of a Go string and its C
// copy. For the pinned pid it is name relative to the pinned directory;
// under DefaultRoot, <pid>/<name> relative to the kept /proc descriptor
// (two path components to walk, not four).
func (r *Reader) cpath(pid int, name string) (uintptr, *byte) {
	if r.dir >= 0 && pid == r.pid {
		r.name = append(append(r.name[:0], name...), 0)
		return uintptr(r.dir), &r.name[0]
	}
	if r.root == DefaultRoot {
		if d := procDir(); d != unix.AT_FDCWD {
			b := strconv.AppendInt(r.name[:0], int64(pid), 10)
			if name != "" {
				b = append(append(b, '/'), name...)
			}
			r.name = append(b, 0)
			return uintptr(d), &r.name[0]
		}
	}
	b := append(r.name[:0], r.root...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, '/')
	b = append(b, name...)
	r.name = append(b, 0)
	return uintptr(atFDCWD), &r.name[0]
}

// open opens <root>/<pid>/<name> read-only.
func (r *Reader) open(pid int, name string) (int, error) {
	for {
		dir, p := r.cpath(pid, name)
		fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, dir,
			uintptr(unsafe.Pointer(p)), unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, r.fail("open", pid, name, errno)
		}
		return int(fd), nil
	}
}

// StatAt is stat(2) of <root>/<pid>/<name>, following a link (exe: the
// binary's file).
func (r *Reader) StatAt(pid int, name string, st *unix.Stat_t) error {
	dir, path := unix.AT_FDCWD, r.path(pid, name)
	if r.dir >= 0 && pid == r.pid {
		dir, path = r.dir, name
	}
	if err := unix.Fstatat(dir, path, st, 0); err != nil {
		return r.fail("stat", pid, name, err)
	}
	return nil
}

// Readlink reads the link <root>/<pid>/<name> (exe, cwd, root).
func (r *Reader) Readlink(pid int, name string) (string, error) {
	for {
		dir, p := r.cpath(pid, name)
		n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, dir, uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)), 0, 0)
		if errno != 0 {
			return "", r.fail("readlink", pid, name, errno)
		}
		if int(n) < len(r.buf) {
			return r.str(r.buf[:n]), nil
		}
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
}

// str makes a string of b (Strings).
func (r *Reader) str(b []byte) string {
	if r.Strings != nil {
		return r.Strings(b)
	}
	return string(b)
}

// read returns the content of <root>/<pid>/<name> in the Reader's buffer;
// it is valid until the next call.
func (r *Reader) read(pid int, name string) ([]byte, error) {
	b, _, err := r.readMax(pid, name, -1)
	return b, err
}

// readMax is read keeping at most max bytes (max < 0: no bound); cut
// reports that the file held more.
func (r *Reader) readMax(pid int, name string, max int) (b []byte, cut bool, err error) {
	fd, err := r.open(pid, name)
	if err != nil {
		return nil, false, err
	}
	defer unix.Close(fd)
	b, cut, err = readAll(fd, r.buf[:0], max, true)
	if cap(b) > cap(r.buf) {
		r.buf = b[:cap(b)]
	}
	if err != nil {
		return nil, false, r.fail("read", pid, name, err)
	}
	return b, cut, nil
}

// readAll appends what fd holds to buf until end of file or, with max >= 0,
// until more than max bytes were read; it returns at most max bytes and
// whether the file held more. With short, a read that fills less than the
// room it was given is taken as the end of the file, saving the read that
// would return 0: true of the per-process files the Reader reads (stat,
// status and cgroup are made whole before the first byte is copied,
// cmdline and environ are copied until the count or their end), not of
// /proc files in general (maps is read a page at a time).
func readAll(fd int, buf []byte, max int, short bool) ([]byte, bool, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := buf[len(buf):cap(buf)]
		if max >= 0 && len(room) > max+1-len(buf) {
			room = room[:max+1-len(buf)]
		}
		m, err := unix.Read(fd, room)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if m == 0 {
			return buf, false, nil
		}
		buf = buf[:len(buf)+m]
		if max >= 0 && len(buf) > max {
			return buf[:max], true, nil
		}
		if short && m < len(room) {
			return buf, false, nil
		}
	}
}

// ReadFileMax reads at most max bytes of a /proc file (cmdline and environ
// can hold megabytes); cut reports that it held more. Errors are as
// ReadFile's.
func ReadFileMax(path string, max int) (b []byte, cut bool, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, classify(&os.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	b, cut, err = readAll(fd, make([]byte, 0, min(max+1, 4096)), max, false)
	if err != nil {
		return nil, false, classify(&os.PathError{Op: "read", Path: path, Err: err})
	}
	return b, cut, nil
}

// Stat reads /proc/<pid>/stat.
func (r *Reader) Stat(pid int) (*Stat, error) {
	s := new(Stat)
	if err := r.StatTo(pid, s); err != nil {
		return nil, err
	}
	return s, nil
}

// StatTo is Stat into s (no allocation but the comm's, none with a
// Strings that has it).
func (r *Reader) StatTo(pid int, s *Stat) error {
	b, err := r.read(pid, "stat")
	if err != nil {
		return err
	}
	if err := parseStat(b, s, r.Strings); err != nil {
		return fmt.Errorf("%s: %w", r.path(pid, "stat"), err)
	}
	return nil
}

// Status reads /proc/<pid>/status.
func (r *Reader) Status(pid int) (*Status, error) {
	b, err := r.read(pid, "status")
	if err != nil {
		return nil, err
	}
	s, err := ParseStatus(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.path(pid, "status"), err)
	}
	return s, nil
}

// Cmdline reads at most max bytes of /proc/<pid>/cmdline (max < 0: all
// of it) as SplitNul does; cut reports that it held more (the last element
// is then the beginning of an argument).
func (r *Reader) Cmdline(pid, max int) (args []string, cut bool, err error) {
	b, cut, err := r.CmdlineBytes(pid, max)
	if err != nil {
		return nil, false, err
	}
	return SplitNul(b), cut, nil
}

// CmdlineBytes is Cmdline's read: the bytes, valid until the next call.
func (r *Reader) CmdlineBytes(pid, max int) (b []byte, cut bool, err error) {
	return r.readMax(pid, "cmdline", max)
}

// Exe reads the /proc/<pid>/exe link.
func (r *Reader) Exe(pid int) (string, error) { return r.Readlink(pid, "exe") }

// Environ reads at most max bytes of /proc/<pid>/environ (max < 0: all of
// it) as ParseEnviron does; cut reports that it held more (the variable the
// bound cut through is left out).
func (r *Reader) Environ(pid, max int) (env map[string]string, cut bool, err error) {
	b, cut, err := r.readMax(pid, "environ", max)
	if err != nil {
		return nil, false, err
	}
	if cut {
		b = b[:bytes.LastIndexByte(b, 0)+1]
	}
	return ParseEnviron(b), cut, nil
}

// Cgroup reads /proc/<pid>/cgroup.
func (r *Reader) Cgroup(pid int) (Cgroup, error) {
	b, err := r.read(pid, "cgroup")
	if err != nil {
		return Cgroup{}, err
	}
	return ParseCgroup(b), nil
}

// atFDCWD is unix.AT_FDCWD as a variable, so that it converts to uintptr.
var atFDCWD = unix.AT_FDCWD

// nsLinks are the /proc/<pid>/ns links of NamespaceNames.
var nsLinks = func() (l [len(NamespaceNames)]string) {
	for i, n := range NamespaceNames {
		l[i] = "ns/" + n
	}
	return l
}()

// Namespaces is ReadNamespaces without an allocation: a namespace the
// kernel lacks, or a link this process may not read, is left 0.
func (r *Reader) Namespaces(pid int) [len(NamespaceNames)]uint64 {
	var out [len(NamespaceNames)]uint64
	for i, name := range nsLinks {
		dir, p := r.cpath(pid, name)
		n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, dir, uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)), 0, 0)
		if errno == 0 {
			out[i] = parseNSLink(r.buf[:n])
		}
	}
	return out
}

// parseNSLink is ParseNSLink of a link in bytes.
func parseNSLink(b []byte) uint64 {
	_, rest, ok := bytes.Cut(b, []byte(":["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0
	}
	var v uint64
	for _, c := range rest[:len(rest)-1] {
		if c < '0' || c > '9' || v > (1<<64-1)/10-1 {
			return 0
		}
		v = v*10 + uint64(c-'0')
	}
	return v
}
