package procfs

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Reader reads /proc files with raw system calls into one reusable buffer:
// the event path of a monitor, where each exec costs a few reads and every
// microsecond counts (os.ReadFile costs an fstat and allocations more). A
// Reader is not safe for concurrent use.
type Reader struct {
	root string
	buf  []byte
}

// NewReader returns a Reader of the proc tree at root.
func NewReader(root string) *Reader {
	return &Reader{root: root, buf: make([]byte, 16<<10)}
}

// Root returns the proc root the Reader reads.
func (r *Reader) Root() string { return r.root }

// path returns <root>/<pid>/<name>.
func (r *Reader) path(pid int, name string) string {
	return r.root + "/" + strconv.Itoa(pid) + "/" + name
}

// read returns the content of a file in the Reader's buffer; it is valid
// until the next call.
func (r *Reader) read(path string) ([]byte, error) {
	b, _, err := r.readMax(path, -1)
	return b, err
}

// readMax is read keeping at most max bytes (max < 0: no bound); cut
// reports that the file held more.
func (r *Reader) readMax(path string, max int) (b []byte, cut bool, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, classify(fmt.Errorf("open %s: %w", path, err))
	}
	defer unix.Close(fd)
	b, cut, err = readAll(fd, r.buf[:0], max)
	if cap(b) > cap(r.buf) {
		r.buf = b[:cap(b)]
	}
	if err != nil {
		return nil, false, classify(fmt.Errorf("read %s: %w", path, err))
	}
	return b, cut, nil
}

// readAll appends what fd holds to buf until end of file or, with max >= 0,
// until more than max bytes were read; it returns at most max bytes and
// whether the file held more.
func readAll(fd int, buf []byte, max int) ([]byte, bool, error) {
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
	b, cut, err = readAll(fd, make([]byte, 0, min(max+1, 4096)), max)
	if err != nil {
		return nil, false, classify(&os.PathError{Op: "read", Path: path, Err: err})
	}
	return b, cut, nil
}

// Stat reads /proc/<pid>/stat.
func (r *Reader) Stat(pid int) (*Stat, error) {
	b, err := r.read(r.path(pid, "stat"))
	if err != nil {
		return nil, err
	}
	s, err := ParseStat(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.path(pid, "stat"), err)
	}
	return s, nil
}

// Status reads /proc/<pid>/status.
func (r *Reader) Status(pid int) (*Status, error) {
	b, err := r.read(r.path(pid, "status"))
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
	b, cut, err := r.readMax(r.path(pid, "cmdline"), max)
	if err != nil {
		return nil, false, err
	}
	return SplitNul(b), cut, nil
}

// Exe reads the /proc/<pid>/exe link.
func (r *Reader) Exe(pid int) (string, error) {
	p := r.path(pid, "exe")
	for {
		n, err := unix.Readlink(p, r.buf)
		if err != nil {
			return "", classify(fmt.Errorf("readlink %s: %w", p, err))
		}
		if n < len(r.buf) {
			return string(r.buf[:n]), nil
		}
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
}
