package procfs

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestReaderMatchesOS: the Reader's raw reads (short read taken as the
// end, namespace links parsed without allocating) give what os.ReadFile
// and ReadNamespaces give, for this process and, pinned, for a child.
func TestReaderMatchesOS(t *testing.T) {
	r := NewReader(DefaultRoot)
	pid := os.Getpid()
	for _, name := range []string{"status", "cmdline", "environ", "cgroup"} {
		got, err := r.read(pid, name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(Path(DefaultRoot, pid, name))
		if err != nil {
			t.Fatal(err)
		}
		if name != "status" && string(got) != string(want) { // status has counters that move
			t.Errorf("%s: %q, os.ReadFile %q", name, got, want)
		}
		if name == "status" && len(got) < len(want)/2 {
			t.Errorf("status: %d bytes, os.ReadFile %d", len(got), len(want))
		}
	}
	if got, want := r.Namespaces(pid), ReadNamespaces(DefaultRoot, pid); got != want || got[0] == 0 {
		t.Errorf("Namespaces %v, ReadNamespaces %v", got, want)
	}
	if env, cut, err := r.Environ(pid, 10); err != nil || !cut || len(env) > 1 {
		t.Errorf("Environ(10): %v %v %v", env, cut, err)
	}
}

// TestPinnedReaderReaped: a pinned directory reads its own process and,
// once that is reaped, nothing (ErrGone), not another process.
func TestPinnedReaderReaped(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	r := NewReader(DefaultRoot)
	if err := r.Pin(pid); err != nil {
		t.Fatal(err)
	}
	defer r.Unpin()
	s, err := r.Stat(pid)
	if err != nil || s.PID != pid {
		t.Fatalf("pinned stat: %+v %v", s, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := r.Stat(pid); !errors.Is(err, ErrGone) {
		t.Errorf("stat of a reaped pinned process: %v, want ErrGone", err)
	}
	if _, err := r.Readlink(pid, "exe"); !errors.Is(err, ErrGone) {
		t.Errorf("exe of a reaped pinned process: %v, want ErrGone", err)
	}
	if err := r.Pin(pid); !errors.Is(err, ErrGone) {
		t.Errorf("Pin of a reaped pid: %v, want ErrGone", err)
	}
}

// TestStatLayout: the layout fields are read (this process may read its
// own) and ordered as exec places them: arguments below the environment.
func TestStatLayout(t *testing.T) {
	s, err := NewReader(DefaultRoot).Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.Layout[0] == 0 || s.Layout[1] == 0 || s.Layout[1] >= s.Layout[2] {
		t.Errorf("layout %#x: want startstack, arg_start < env_start", s.Layout)
	}
}

// TestReaderErrors: the Reader's errors of a pid not in use match ErrGone
// and fs.ErrNotExist and read as ReadFile's (classify's) do; another errno
// is not ErrGone.
func TestReaderErrors(t *testing.T) {
	r := NewReader(DefaultRoot)
	const pid = 1 << 30 // above pid_max
	_, err := r.Stat(pid)
	_, want := ReadFile(Path(DefaultRoot, pid, "stat"))
	if !errors.Is(err, ErrGone) || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Stat of an unused pid: %v, want ErrGone and ENOENT", err)
	}
	if want == nil || err.Error() != want.Error() {
		t.Errorf("Stat of an unused pid: %q, ReadFile %q", err, want)
	}
	if err := r.Pin(pid); !errors.Is(err, ErrGone) || err.Error() != "process gone: open /proc/1073741824: no such file or directory" {
		t.Errorf("Pin of an unused pid: %q, want ErrGone", err)
	}
	if _, err := r.Readlink(os.Getpid(), "stat"); !errors.Is(err, syscall.EINVAL) || errors.Is(err, ErrGone) {
		t.Errorf("readlink of a file: %v, want EINVAL, not ErrGone", err)
	}
}
