package procfs

import (
	"fmt"
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
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, classify(fmt.Errorf("open %s: %w", path, err))
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Read(fd, r.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, classify(fmt.Errorf("read %s: %w", path, err))
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
	}
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

// Cmdline reads /proc/<pid>/cmdline as SplitNul does.
func (r *Reader) Cmdline(pid int) ([]string, error) {
	b, err := r.read(r.path(pid, "cmdline"))
	if err != nil {
		return nil, err
	}
	return SplitNul(b), nil
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
