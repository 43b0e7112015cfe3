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
			for name, read := range imageReads(NewReader()) {
				p, err := read(c.PID)
				if err != nil {
					t.Fatal(err)
				}
				want := []string{os.Args[0], "arg1", "arg two"}
				if p.Path != exe || !slices.Equal(p.Args, want) || p.Incomplete || p.PPID != os.Getpid() || p.Starttime == 0 {
					t.Errorf("%s = %s %q (incomplete %v, ppid %d, start %d), want %s %q, ppid %d",
						name, p.Path, p.Args, p.Incomplete, p.PPID, p.Starttime, exe, want, os.Getpid())
				}
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
	r := NewReader()
	for name, read := range imageReads(r) {
		c := startChild(t, helperCmd("exec="+sleep, "sleep", "60"), true)
		r.afterArgs = func() {
			r.afterArgs = nil
			if _, err := c.Stdin.Write([]byte("go\n")); err != nil {
				t.Fatal(err)
			}
			proctest.WaitComm(t, c.PID, sleep)
		}
		p, err := read(c.PID)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"sleep", "60"}; p.Path != real || !slices.Equal(p.Args, want) {
			t.Errorf("%s = %s %q, want %s %q", name, p.Path, p.Args, real, want)
		}
	}
}

// imageReads are Image and ImageOfKnown of r, by name.
func imageReads(r *Reader) map[string]func(int) (*Process, error) {
	return map[string]func(int) (*Process, error){"Image": r.Image, "ImageOfKnown": r.ImageOfKnown}
}

// TestImageArgsReused: a Reader gives the argument list it made for the
// last cmdline read again when the next read has the same bytes (no list
// per exec in a storm of one command), and a new one for other bytes.
func TestImageArgsReused(t *testing.T) {
	a := startChild(t, helperCmd("plain", "same"), true)
	b := startChild(t, helperCmd("plain", "same"), true)
	c := startChild(t, helperCmd("plain", "other"), true)
	r := NewReader()
	var got [][]string
	for _, pid := range []int{a.PID, b.PID, c.PID} {
		p, err := r.ImageOfKnown(pid)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Args)
	}
	if !slices.Equal(got[0], []string{os.Args[0], "same"}) || !slices.Equal(got[2], []string{os.Args[0], "other"}) {
		t.Fatalf("Args %q, want %q then %q", got, []string{os.Args[0], "same"}, []string{os.Args[0], "other"})
	}
	if &got[0][0] != &got[1][0] {
		t.Error("the same cmdline read twice made two lists")
	}
	if !slices.Equal(got[1], got[0]) || &got[2][0] == &got[0][0] {
		t.Errorf("another cmdline given the list of the last: %q", got)
	}
}
