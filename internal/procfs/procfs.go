package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
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
// between the first '(' and the last ')'. It allocates the Stat and its
// Comm, nothing else.
func ParseStat(b []byte) (*Stat, error) {
	s := new(Stat)
	if err := parseStat(b, s, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// parseStat is ParseStat into s, making the comm with str (nil: a copy).
func parseStat(b []byte, s *Stat, str func([]byte) string) error {
	l := bytes.IndexByte(b, '(')
	r := bytes.LastIndexByte(b, ')')
	if l < 1 || r < l {
		return fmt.Errorf("%w: no comm in stat", ErrMalformed)
	}
	pid, ok := parseDec(bytes.TrimSpace(b[:l]))
	if !ok || pid > math.MaxInt32 {
		return fmt.Errorf("%w: pid %q", ErrMalformed, bytes.TrimSpace(b[:l]))
	}
	// Fields after the comm, numbered from 3 (state) as in proc(5): the
	// ones kept, by number, in f.
	var f [51][]byte
	n := 2
	for i := r + 1; i < len(b) && n < len(f)-1; {
		if b[i] == ' ' || b[i] == '\n' {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\n' {
			j++
		}
		n++
		f[n], i = b[i:j], j
	}
	if n < 22 || len(f[3]) != 1 {
		return fmt.Errorf("%w: %d fields after comm", ErrMalformed, n-2)
	}
	comm := b[l+1 : r]
	*s = Stat{PID: int(pid), State: f[3][0]}
	if str != nil {
		s.Comm = str(comm)
	} else {
		s.Comm = string(comm)
	}
	bad := 0
	num := func(i int) uint64 {
		v, ok := parseDec(f[i])
		if !ok && bad == 0 {
			bad = i
		}
		return v
	}
	// ppid can be 0 (init, kthreadd) and is never negative.
	s.PPID = int(num(4))
	s.Flags = num(9)
	s.NumThreads = int(num(20))
	s.StartTicks = num(22)
	if n >= 50 {
		s.Layout = [3]uint64{num(28), num(48), num(50)}
	}
	if bad != 0 {
		return fmt.Errorf("%w: field %d: %q is not a number", ErrMalformed, bad, f[bad])
	}
	return nil
}

// parseDec parses a non-empty decimal number that fits in 64 bits.
func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		d := uint64(c - '0')
		if c < '0' || c > '9' || v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
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
