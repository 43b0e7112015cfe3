package process

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
)

func TestCommNames(t *testing.T) {
	for _, c := range []struct {
		comm, link string
		want       bool
	}{
		{"true", "/usr/bin/true", true},
		{"true", "/usr/bin/true (deleted)", true},
		{"process.test", "/tmp/go-build1/b001/process.test", true},
		{"a-very-long-nam", "/opt/a-very-long-name-indeed", true}, // cut to 15 bytes
		{"a-very-long-name", "/opt/a-very-long-name-indeed", false},
		{"sh", "/usr/bin/dash", false},          // a script's interpreter, a link's target
		{"myscript", "/usr/bin/python3", false}, // comm names the script
		{"", "/", false},
		{"", "", false},
		{"x", "x", true},
	} {
		if got := commNames(c.comm, c.link); got != c.want {
			t.Errorf("commNames(%q, %q) = %v, want %v", c.comm, c.link, got, c.want)
		}
	}
}

// TestImage: Reader.Image names a process with its binary and arguments,
// whether its comm names the binary (the stat read checks the pair) or not
// (a process that renamed itself: the exe link is read again).
func TestImage(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	for _, mode := range []string{"plain", "comm=renamed"} {
		t.Run(mode, func(t *testing.T) {
			c := startChild(t, helperCmd(mode, "arg1", "arg two"), true)
			p, err := NewReader().Image(c.PID)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{os.Args[0], "arg1", "arg two"}
			if p.Path != exe || !slices.Equal(p.Args, want) || p.Incomplete || p.PPID != os.Getpid() || p.Starttime == 0 {
				t.Errorf("Image = %s %q (incomplete %v, ppid %d, start %d), want %s %q, ppid %d",
					p.Path, p.Args, p.Incomplete, p.PPID, p.Starttime, exe, want, os.Getpid())
			}
		})
	}
}

// TestImageExecBetween: an exec between Image's read of the exe link and
// its read of the arguments (made to come there) is seen from the comm its
// stat read shows, which does not name the link read: the link is read
// again and the new image's arguments with it, never the old path with the
// new arguments.
func TestImageExecBetween(t *testing.T) {
	sleep := proctest.RequireTool(t, "sleep")
	real, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	c := startChild(t, helperCmd("exec="+sleep, "sleep", "60"), true)
	r := NewReader()
	r.afterArgs = func() {
		r.afterArgs = nil
		if _, err := c.Stdin.Write([]byte("go\n")); err != nil {
			t.Fatal(err)
		}
		proctest.WaitComm(t, c.PID, sleep)
	}
	p, err := r.Image(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sleep", "60"}; p.Path != real || !slices.Equal(p.Args, want) {
		t.Errorf("Image = %s %q, want %s %q", p.Path, p.Args, real, want)
	}
}
