package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrGone reports that the process exited (or its pid was never in use) while
// it was being read.
var ErrGone = errors.New("process gone")

// ErrMalformed reports a /proc file whose content could not be parsed.
var ErrMalformed = errors.New("malformed proc file")

// DefaultRoot is the mount point of procfs on a live system.
const DefaultRoot = "/proc"

// UserHZ is the unit of the tick counters in /proc/<pid>/stat. It is fixed at
// 100 by the kernel ABI on every architecture Linux supports today.
const UserHZ = 100

// Path joins the proc root, a pid and a file name: Path("/proc", 1, "stat").
func Path(root string, pid int, name string) string {
	return root + "/" + strconv.Itoa(pid) + "/" + name
}

// ReadFile reads a whole /proc file, mapping "no such process" errors to
// ErrGone so callers can tell a vanished process from a real failure.
func ReadFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, classify(err)
	}
	return b, nil
}

// Readlink reads a /proc symlink (exe, cwd, root, ns/*), mapping vanished
// processes to ErrGone.
func Readlink(path string) (string, error) {
	s, err := os.Readlink(path)
	if err != nil {
		return "", classify(err)
	}
	return s, nil
}

// classify wraps err with ErrGone when it means the process is not there.
// ESRCH comes from reading files of a task that is exiting; ENOENT from a pid
// that is no longer (or never was) in use.
func classify(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%w: %w", ErrGone, err)
	}
	return err
}

// Stat holds the fields of /proc/<pid>/stat that identify a process.
type Stat struct {
	PID        int
	Comm       string // between the first '(' and the last ')'
	State      byte
	PPID       int
	Flags      uint64 // PF_* flags of the task
	StartTicks uint64 // field 22: start time in clock ticks since boot
	NumThreads int
	// Layout is where exec put the stack, the arguments and the
	// environment (fields 28, 48 and 50: startstack, arg_start, env_start):
	// fork copies them, exec places them anew (at random addresses where
	// the stack is randomized), nothing else changes them but
	// prctl(PR_SET_MM). Zero where the reader may not see them (another
	// user's process without privilege) or the kernel lacks them (< 3.5).
	Layout [3]uint64
}

// PFKthread is the task flag of kernel threads.
const PFKthread = 0x00200000

// IsKernelThread reports whether the task is a kernel thread.
func (s *Stat) IsKernelThread() bool { return s.Flags&PFKthread != 0 }

// ReadStat reads and parses /proc/<pid>/stat.
func ReadStat(root string, pid int) (*Stat, []byte, error) {
	b, err := ReadFile(Path(root, pid, "stat"))
	if err != nil {
		return nil, nil, err
	}
	s, err := ParseStat(b)
	if err != nil {
		return nil, b, fmt.Errorf("%s: %w", Path(root, pid, "stat"), err)
	}
	return s, b, nil
}

// ParseStat parses the content of /proc/<pid>/stat. The comm field may hold
// spaces and parentheses (a task can name itself "a) b"), so it is taken
// between the first '(' and the last ')'.
func ParseStat(b []byte) (*Stat, error) {
	l := bytes.IndexByte(b, '(')
	r := bytes.LastIndexByte(b, ')')
	if l < 1 || r < l {
		return nil, fmt.Errorf("%w: no comm in stat", ErrMalformed)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:l])))
	if err != nil {
		return nil, fmt.Errorf("%w: pid: %v", ErrMalformed, err)
	}
	s := &Stat{PID: pid, Comm: string(b[l+1 : r])}
	// Fields after the comm, numbered from 3 (state) as in proc(5).
	f := bytes.Fields(b[r+1:])
	const need = 22 - 2 // up to field 22 (starttime)
	if len(f) < need || len(f[0]) != 1 {
		return nil, fmt.Errorf("%w: %d fields after comm", ErrMalformed, len(f))
	}
	field := func(n int) []byte { return f[n-3] }
	s.State = field(3)[0]
	var errs []error
	num := func(n int) uint64 {
		v, err := strconv.ParseUint(string(field(n)), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %d: %v", n, err))
		}
		return v
	}
	// ppid can be 0 (init, kthreadd) and is never negative.
	s.PPID = int(num(4))
	s.Flags = num(9)
	s.NumThreads = int(num(20))
	s.StartTicks = num(22)
	if len(f) >= 50-2 {
		s.Layout = [3]uint64{num(28), num(48), num(50)}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, errors.Join(errs...))
	}
	return s, nil
}

// SplitNul splits a NUL-separated /proc list (cmdline, environ). One trailing
// NUL terminates the last element; an empty element before it is kept, so
// `prog ""` yields ["prog", ""]. A list with no NUL at all (a process that
// rewrote its argv, setproctitle-style) is one element. The elements share
// one copy of b (two allocations in all, whatever their number).
func SplitNul(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	s := string(b)
	out := make([]string, 0, strings.Count(s, "\x00")+1)
	for {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

// ParseEnviron turns the NUL-separated content of /proc/<pid>/environ into a
// map. A value may contain '=' ("A=b=c" gives A -> "b=c") and may be empty;
// an entry without '=' is kept with an empty value. Later duplicates win, as
// getenv(3) would not guarantee otherwise. Keys and values share one copy
// of b.
func ParseEnviron(b []byte) map[string]string {
	s := string(b)
	env := make(map[string]string, strings.Count(s, "\x00")+1)
	for s != "" {
		kv, rest, _ := strings.Cut(s, "\x00")
		s = rest
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// PIDs lists the pids in the proc root, in ascending order.
func PIDs(root string) ([]int, error) {
	d, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}
