package vmtest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one entry read back from a newc archive.
type cpioEntry struct {
	Name          string
	Mode          uint32
	NLink         uint32
	RMajor        uint32
	RMinor        uint32
	Data          []byte
	Ino, UID, GID uint32
}

// readCPIO parses a newc archive up to its trailer, checking the magic,
// the 4-byte alignment of names and data, and that nothing follows the
// trailer but padding.
func readCPIO(b []byte) ([]cpioEntry, error) {
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			return nil, fmt.Errorf("header at %d not 4-aligned", off)
		}
		if len(b)-off < cpioHdrLen {
			return nil, fmt.Errorf("short header at %d", off)
		}
		h := b[off : off+cpioHdrLen]
		if string(h[:6]) != cpioMagic {
			return nil, fmt.Errorf("bad magic %q at %d", h[:6], off)
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return nil, fmt.Errorf("field %d at %d: %w", i, off, err)
			}
			f[i] = uint32(v)
		}
		nameSize, fileSize := int(f[11]), int(f[6])
		off += cpioHdrLen
		if nameSize < 1 || off+nameSize > len(b) || b[off+nameSize-1] != 0 {
			return nil, fmt.Errorf("bad name at %d", off)
		}
		name := string(b[off : off+nameSize-1])
		off += nameSize
		off += pad4(cpioHdrLen + nameSize)
		if off+fileSize > len(b) {
			return nil, fmt.Errorf("%s: data past the end", name)
		}
		if name == cpioTrailer {
			for _, c := range b[off:] {
				if c != 0 {
					return nil, errors.New("data after the trailer")
				}
			}
			return out, nil
		}
		out = append(out, cpioEntry{Name: name, Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], NLink: f[4],
			RMajor: f[9], RMinor: f[10], Data: b[off : off+fileSize]})
		off += fileSize + pad4(fileSize)
	}
}

func TestCPIOWriter(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "tool")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "sub", "x.txt"), []byte("xyz"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/x.txt", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	steps := []error{
		w.Dir("/etc", 0o755),
		w.Bytes("etc/one", 0o644, []byte("1")),       // data needs 3 bytes of padding
		w.Bytes("a/b/c/four", 0o600, []byte("four")), // parents added, no padding
		w.Bytes("empty", 0o644, nil),                 // no data at all
		w.Dir("tmp", 0o777|os.ModeSticky),
		w.CopyFile("bin/tool", src),
		w.Symlink("bin/sh", "tool"),
		w.CharDev("dev/console", 0o600, 5, 1),
		w.CopyTree("data", tree),
		w.Dir("etc", 0o700), // already there: not repeated
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Bytes("late", 0o644, nil); !errors.Is(err, ErrCPIOClosed) {
		t.Errorf("write after Close: %v, want ErrCPIOClosed", err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not a multiple of 4", buf.Len())
	}

	entries, err := readCPIO(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		mode uint32
		data string
	}{
		{"etc", 0o040755, ""},
		{"etc/one", 0o100644, "1"},
		{"a", 0o040755, ""},
		{"a/b", 0o040755, ""},
		{"a/b/c", 0o040755, ""},
		{"a/b/c/four", 0o100600, "four"},
		{"empty", 0o100644, ""},
		{"tmp", 0o041777, ""},
		{"bin", 0o040755, ""},
		{"bin/tool", 0o100755, "#!/bin/sh\necho hi\n"},
		{"bin/sh", 0o120777, "tool"},
		{"dev", 0o040755, ""},
		{"dev/console", 0o020600, ""},
		{"data", 0o040755, ""},
		{"data/link", 0o120777, "sub/x.txt"},
		{"data/sub", 0o040755, ""},
		{"data/sub/x.txt", 0o100600, "xyz"},
	}
	if len(entries) != len(want) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name)
		}
		t.Fatalf("entries %q, want %d", names, len(want))
	}
	inos := map[uint32]bool{}
	for i, e := range entries {
		if e.Name != want[i].name || e.Mode != want[i].mode || string(e.Data) != want[i].data {
			t.Errorf("entry %d: %s %o %q, want %s %o %q", i, e.Name, e.Mode, e.Data, want[i].name, want[i].mode, want[i].data)
		}
		if e.UID != 0 || e.GID != 0 {
			t.Errorf("%s: owner %d:%d, want root", e.Name, e.UID, e.GID)
		}
		if inos[e.Ino] {
			t.Errorf("%s: inode %d reused (the kernel would hard-link it)", e.Name, e.Ino)
		}
		inos[e.Ino] = true
		if e.Name == "dev/console" && (e.RMajor != 5 || e.RMinor != 1) {
			t.Errorf("dev/console is %d:%d, want 5:1", e.RMajor, e.RMinor)
		}
	}

	// GNU cpio, when installed, must read the archive the same way.
	if cpio, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command(cpio, "-i", "-t", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -t: %v", err)
		}
		var names []string
		for _, w := range want {
			names = append(names, w.name)
		}
		if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(names, " ") {
			t.Errorf("cpio -t lists %q, want %q", got, names)
		}
		cmd = exec.Command(cpio, "-i", "--quiet", "--to-stdout", "data/sub/x.txt")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		if out, err := cmd.Output(); err != nil || string(out) != "xyz" {
			t.Errorf("cpio -i --to-stdout data/sub/x.txt: %q, %v", out, err)
		}
	} else {
		t.Log("cpio not installed: archive checked with the test's reader only")
	}
}

func TestCPIOWriterErrors(t *testing.T) {
	w := NewCPIOWriter(io.Discard)
	for _, name := range []string{"", "/", ".", cpioTrailer} {
		if err := w.Bytes(name, 0o644, nil); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if err := w.File("short", 0o644, 10, strings.NewReader("abc")); err == nil {
		t.Error("short reader accepted")
	}
	if err := w.Bytes("after-error", 0o644, nil); err == nil {
		t.Error("write after a failed write accepted")
	}
}

func TestInitramfs(t *testing.T) {
	dir := t.TempDir()
	busybox := filepath.Join(dir, "busybox")
	bin := filepath.Join(dir, "pkg.test")
	testdata := filepath.Join(dir, "testdata")
	for _, f := range []string{busybox, bin, filepath.Join(testdata, "in.txt")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(filepath.Base(f)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ir := Initramfs{
		Busybox: busybox,
		Tests: []Test{
			{Name: "a", Binary: bin, Args: []string{"-test.run", "Test'Quoted$ (x)"}, Testdata: testdata},
			{Name: "b", Binary: bin},
		},
		Env: []string{"FOO=bar baz"},
	}
	var buf bytes.Buffer
	if err := ir.Write(&buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := readCPIO(raw)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpioEntry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	for _, name := range []string{"init", "bin/busybox", "dev/console", "tmp", "vmtest/0/pkg.test",
		"vmtest/0/testdata/in.txt", "vmtest/1/pkg.test", "proc", "sys"} {
		if _, ok := got[name]; !ok {
			t.Errorf("initramfs lacks %s", name)
		}
	}
	if _, ok := got["vmtest/1/testdata"]; ok {
		t.Error("test b has no testdata but got one")
	}
	script := string(got["init"].Data)
	if got["init"].Mode != 0o100755 || !strings.HasPrefix(script, "#!/bin/busybox sh\n") {
		t.Errorf("init: mode %o, script starts %q", got["init"].Mode, script[:min(len(script), 30)])
	}
	if !strings.Contains(script, `'-test.run' 'Test'\''Quoted$ (x)'`) {
		t.Errorf("arguments not quoted for sh:\n%s", script)
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		// Run the script's quoting through a real shell: the argument
		// must come back unchanged.
		out, err := exec.Command(sh, "-c", "printf '%s\\n' "+shQuote("Test'Quoted$ (x)")).Output()
		if err != nil || string(out) != "Test'Quoted$ (x)\n" {
			t.Errorf("sh round trip: %q %v", out, err)
		}
		if out, err := exec.Command(sh, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("sh -n init: %v %s", err, out)
		}
	}
}
