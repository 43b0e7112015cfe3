package checksum

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// coreutils maps an algorithm constant to the coreutils program computing it.
var coreutils = map[string]string{
	HashMD5:    "md5sum",
	HashSHA1:   "sha1sum",
	HashSHA256: "sha256sum",
}

// coreutilsDigests runs md5sum, sha1sum and sha256sum on paths and returns
// path -> algorithm -> digest. Paths the tools cannot read are absent.
func coreutilsDigests(t testing.TB, paths ...string) map[string]map[string]string {
	t.Helper()
	out := make(map[string]map[string]string)
	for algo, prog := range coreutils {
		bin, err := exec.LookPath(prog)
		if err != nil {
			t.Skipf("%s not available: %v", prog, err)
		}
		var stdout bytes.Buffer
		cmd := exec.Command(bin, paths...)
		cmd.Stdout = &stdout
		_ = cmd.Run() // nonzero when some path vanished; parse what we got
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, `\`) {
				continue // escaped file name; not produced for our paths
			}
			sum, name, ok := strings.Cut(line, "  ")
			if !ok {
				continue
			}
			if out[name] == nil {
				out[name] = make(map[string]string)
			}
			out[name][algo] = sum
		}
	}
	return out
}

// goDigests computes the expected digests of b with the standard library.
func goDigests(b []byte) map[string]string {
	m := md5.Sum(b)
	s1 := sha1.Sum(b)
	s256 := sha256.Sum256(b)
	return map[string]string{
		HashMD5:    hex.EncodeToString(m[:]),
		HashSHA1:   hex.EncodeToString(s1[:]),
		HashSHA256: hex.EncodeToString(s256[:]),
	}
}

func assertDigests(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d digests %v, want %d %v", what, len(got), got, len(want), want)
	}
	for algo, w := range want {
		if got[algo] != w {
			t.Errorf("%s: %s = %q, want %q", what, algo, got[algo], w)
		}
	}
}

func writeFile(t testing.TB, path string, content []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, content, mode); err != nil {
		t.Fatal(err)
	}
}

// sleepBinary returns the resolved path of sleep(1).
func sleepBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("sleep not found: %v", err)
	}
	p, err = filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startCopy copies src to dst (mode 0755) and runs it with args. The
// process is killed and reaped at the end of the test.
func startCopy(t *testing.T, src, dst string, args ...string) (*exec.Cmd, []byte) {
	t.Helper()
	content, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, content, 0o755)
	return startCmd(t, exec.Command(dst, args...)), content
}

func startCmd(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	var err error
	for range 50 {
		// ETXTBSY: a concurrently forked child may briefly hold a write
		// descriptor of the freshly written binary (golang/go#22315).
		if err = cmd.Start(); !errors.Is(err, syscall.ETXTBSY) {
			break
		}
		cmd = exec.Command(cmd.Path, cmd.Args[1:]...)
		retryPause()
	}
	if err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func retryPause() { time.Sleep(time.Millisecond) }

// goneProcess returns the PID of a process that has exited and been reaped.
func goneProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(sleepBinary(t), "0")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Skipf("pid %d was reused", pid)
	}
	return pid
}

func TestBinariesMatchCoreutils(t *testing.T) {
	var paths []string
	seen := map[string]bool{}
	for _, name := range []string{"sleep", "ls", "sha256sum", "env", "cat", "sh"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if p, err = filepath.EvalSymlinks(p); err == nil && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			paths = append(paths, exe) // the (large) test binary itself
		}
	}
	if len(paths) < 2 {
		t.Skip("not enough binaries found")
	}
	want := coreutilsDigests(t, paths...)
	h := New(Config{})
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			res, err := h.SumFile(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			assertDigests(t, p, res.Digests, want[p])
			if res.Source != p || res.Cached {
				t.Errorf("Source=%q Cached=%v, want %q false", res.Source, res.Cached, p)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if res.Size != fi.Size() || res.Inode != st.Ino || res.Dev != st.Dev || !res.ModTime.Equal(fi.ModTime()) {
				t.Errorf("metadata %+v does not match stat %+v", res, st)
			}
		})
	}
}

func TestAllProcessesMatchCoreutils(t *testing.T) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip(err)
	}
	h := New(Config{MaxConcurrent: 4})
	results := map[string]*Result{}
	var exes []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		res, err := h.Sum(context.Background(), Target{PID: pid})
		if err != nil {
			if errors.Is(err, ErrNoFile) || errors.Is(err, ErrTooLarge) {
				continue // vanished, kernel thread, not accessible, or huge
			}
			t.Errorf("pid %d: %v", pid, err)
			continue
		}
		exe := fmt.Sprintf("/proc/%d/exe", pid)
		if res.Source != exe {
			t.Errorf("pid %d: Source = %q, want %q", pid, res.Source, exe)
		}
		results[exe] = res
		exes = append(exes, exe)
	}
	want := coreutilsDigests(t, exes...)
	compared := 0
	for _, exe := range exes {
		w, ok := want[exe]
		if !ok || len(w) != 3 {
			continue // process exited before coreutils read it
		}
		var st unix.Stat_t
		if unix.Stat(exe, &st) != nil || uint64(st.Ino) != results[exe].Inode || uint64(st.Dev) != results[exe].Dev {
			continue // exited or exec'ed something else meanwhile
		}
		assertDigests(t, exe, results[exe].Digests, w)
		compared++
	}
	if compared == 0 {
		t.Fatal("no process compared (not even the test itself)")
	}
	t.Logf("compared %d processes; stats %+v", compared, h.Stats())
}

func TestDeletedBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "deleted-sleep")
	cmd, content := startCopy(t, sleepBinary(t), bin, "30")
	want := goDigests(content)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	h := New(Config{})
	res, err := h.Sum(context.Background(), Target{PID: pid, Path: bin})
	if err != nil {
		t.Fatal(err)
	}
	assertDigests(t, "deleted binary", res.Digests, want)
	if exe := fmt.Sprintf("/proc/%d/exe", pid); res.Source != exe {
		t.Errorf("Source = %q, want %q", res.Source, exe)
	}
	if res.Size != int64(len(content)) {
		t.Errorf("Size = %d, want %d", res.Size, len(content))
	}
	// The path alone no longer works.
	if _, err := h.SumFile(context.Background(), bin); !errors.Is(err, ErrNoFile) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SumFile of deleted path: err = %v, want ErrNoFile and fs.ErrNotExist", err)
	}
}

func TestFallbackPathVerifiedAgainstExe(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	cmd, content := startCopy(t, sleepBinary(t), bin, "30")
	other := filepath.Join(dir, "impostor")
	writeFile(t, other, content, 0o755) // same bytes, different inode
	pid := cmd.Process.Pid

	h := New(Config{})
	h.noProcExe = true // force the fallback paths while exe stays stat-able

	res, err := h.Sum(context.Background(), Target{PID: pid, RealPath: other, Path: bin})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != bin {
		t.Errorf("Source = %q, want %q (RealPath has another inode)", res.Source, bin)
	}
	assertDigests(t, "fallback", res.Digests, goDigests(content))

	_, err = h.Sum(context.Background(), Target{PID: pid, Path: other})
	if !errors.Is(err, ErrMismatch) || !errors.Is(err, ErrNoFile) {
		t.Errorf("swapped file: err = %v, want ErrMismatch and ErrNoFile", err)
	}
	if err != nil && !strings.Contains(err.Error(), other) {
		t.Errorf("error %q does not name %s", err, other)
	}
}

func TestGoneProcess(t *testing.T) {
	pid := goneProcess(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, []byte("hello\n"), 0o644)
	h := New(Config{})
	ctx := context.Background()

	tests := []struct {
		name    string
		target  Target
		wantErr []error
	}{
		{"no paths", Target{PID: pid}, []error{ErrNoFile, fs.ErrNotExist}},
		{"empty target", Target{}, []error{ErrNoFile}},
		{"missing path", Target{PID: pid, Path: filepath.Join(dir, "missing")}, []error{ErrNoFile, fs.ErrNotExist}},
		{"path works", Target{PID: pid, Path: file}, nil},
		{"realpath works", Target{PID: pid, RealPath: file, Path: "/nonexistent"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := h.Sum(ctx, tc.target)
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if res.Source != file {
					t.Errorf("Source = %q, want %q", res.Source, file)
				}
				assertDigests(t, file, res.Digests, goDigests([]byte("hello\n")))
			}
		})
	}
}

// openModes runs f with openat2 and with the O_NOFOLLOW walk fallback.
func openModes(t *testing.T, f func(t *testing.T, h *Hasher)) {
	for _, mode := range []struct {
		name      string
		noOpenat2 bool
	}{{"openat2", false}, {"nofollow-walk", true}} {
		t.Run(mode.name, func(t *testing.T) {
			h := New(Config{})
			h.noOpenat2 = mode.noOpenat2
			f(t, h)
		})
	}
}

func TestRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	content, err := os.ReadFile(sleepBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, real, content, 0o755)
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sub, "file"), content, 0o755)
	link := filepath.Join(dir, "link")
	dirLink := filepath.Join(dir, "dirlink")
	relLink := filepath.Join(dir, "rellink")
	for target, name := range map[string]string{sleepBinary(t): link, sub: dirLink, "real": relLink} {
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	openModes(t, func(t *testing.T, h *Hasher) {
		ctx := context.Background()
		for _, p := range []string{link, relLink, filepath.Join(dirLink, "file")} {
			res, err := h.SumFile(ctx, p)
			if err == nil {
				t.Errorf("SumFile(%s) = %v, want error", p, res.Digests)
				continue
			}
			if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), p) {
				t.Errorf("SumFile(%s): err = %v, want ErrSymlink naming the path", p, err)
			}
			if _, err := h.Sum(ctx, Target{Path: p}); !errors.Is(err, ErrSymlink) {
				t.Errorf("Sum(Path: %s): err = %v, want ErrSymlink", p, err)
			}
		}
		// The same files reached without links work.
		for _, p := range []string{real, filepath.Join(sub, "file")} {
			res, err := h.SumFile(ctx, p)
			if err != nil {
				t.Fatalf("SumFile(%s): %v", p, err)
			}
			assertDigests(t, p, res.Digests, goDigests(content))
		}
		// The magic /proc/self/exe link is refused as a plain path too.
		if _, err := h.SumFile(ctx, "/proc/self/exe"); !errors.Is(err, ErrSymlink) {
			t.Errorf("SumFile(/proc/self/exe): err = %v, want ErrSymlink", err)
		}
	})
}

func TestRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	openModes(t, func(t *testing.T, h *Hasher) {
		for _, p := range []string{dir, "/dev/null", fifo, "/"} {
			_, err := h.SumFile(context.Background(), p)
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("SumFile(%s): err = %v, want ErrNotRegular", p, err)
			}
		}
	})
}

func TestTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	writeFile(t, p, make([]byte, 1000), 0o644)
	h := New(Config{MaxFileSize: 999})
	_, err := h.SumFile(context.Background(), p)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want ErrTooLarge naming %s", err, p)
	}
	if s := h.Stats(); s.TooLarge != 1 || s.Errors != 0 || s.BytesRead != 0 {
		t.Errorf("stats = %+v, want TooLarge 1 and nothing read", s)
	}
	h = New(Config{MaxFileSize: 1000})
	if _, err := h.SumFile(context.Background(), p); err != nil {
		t.Errorf("file of exactly MaxFileSize: %v", err)
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	writeFile(t, p, []byte("x"), 0o644)
	h := New(Config{})
	for _, algo := range []string{"sha512", "process.hash.sha512", "", "MD5"} {
		if _, err := h.SumFile(context.Background(), p, HashSHA256, algo); !errors.Is(err, ErrUnknownAlgorithm) {
			t.Errorf("algo %q: err = %v, want ErrUnknownAlgorithm", algo, err)
		}
	}
	if s := h.Stats(); s.BytesRead != 0 || s.Errors != 4 {
		t.Errorf("stats = %+v", s)
	}
}

func TestAlgorithmSelection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	content := []byte("some executable bytes")
	writeFile(t, p, content, 0o644)
	all := goDigests(content)
	tests := []struct {
		algos []string
		want  []string
	}{
		{nil, []string{HashMD5, HashSHA1, HashSHA256}},
		{[]string{HashMD5}, []string{HashMD5}},
		{[]string{HashSHA1}, []string{HashSHA1}},
		{[]string{HashSHA256, HashSHA256}, []string{HashSHA256}},
		{[]string{HashSHA256, HashMD5}, []string{HashMD5, HashSHA256}},
		{SupportedAlgorithms(), []string{HashMD5, HashSHA1, HashSHA256}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.algos, ","), func(t *testing.T) {
			res, err := New(Config{}).SumFile(context.Background(), p, tc.algos...)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, a := range tc.want {
				want[a] = all[a]
			}
			assertDigests(t, p, res.Digests, want)
		})
	}
}

func TestCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "prog")
	v1 := []byte("version one")
	writeFile(t, p, v1, 0o755)
	h := New(Config{})
	ctx := context.Background()

	r1, err := h.SumFile(ctx, p, HashSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Cached {
		t.Error("first Sum reported Cached")
	}
	r2, err := h.SumFile(ctx, p, HashSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Cached || h.Stats().CacheHits != 1 {
		t.Errorf("second Sum: Cached=%v stats=%+v, want cached and 1 hit", r2.Cached, h.Stats())
	}
	assertDigests(t, "cached", r2.Digests, map[string]string{HashSHA256: goDigests(v1)[HashSHA256]})
	r2.Digests[HashSHA256] = "scribbled" // the caller owns the map

	// Asking for more algorithms reads the file again, once, for the missing ones.
	r3, err := h.SumFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if r3.Cached {
		t.Error("Sum with new algorithms reported Cached")
	}
	assertDigests(t, "extended", r3.Digests, goDigests(v1))
	for _, algos := range [][]string{nil, {HashMD5}, {HashSHA1, HashSHA256}} {
		r, err := h.SumFile(ctx, p, algos...)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Cached {
			t.Errorf("%v: not cached", algos)
		}
	}
	s := h.Stats()
	if s.Hashed != 2 || s.CacheHits != 4 || s.BytesRead != 2*uint64(len(v1)) {
		t.Errorf("stats = %+v, want 2 hashed, 4 hits, %d bytes", s, 2*len(v1))
	}

	// Rewrite: new size and mtime.
	v2 := []byte("version two, longer")
	writeFile(t, p, v2, 0o755)
	r4, err := h.SumFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if r4.Cached {
		t.Error("rewritten file served from cache")
	}
	assertDigests(t, "rewritten", r4.Digests, goDigests(v2))

	// Same size, mtime forged back: the change time still differs.
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	v3 := []byte("version 3, not longer")[:len(v2)]
	writeFile(t, p, v3, 0o755)
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	r5, err := h.SumFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if r5.Cached {
		t.Error("same-size rewrite with restored mtime served from cache")
	}
	assertDigests(t, "forged mtime", r5.Digests, goDigests(v3))
}

func TestCacheBound(t *testing.T) {
	dir := t.TempDir()
	h := New(Config{CacheEntries: 2})
	ctx := context.Background()
	var files []string
	for i := range 3 {
		p := filepath.Join(dir, strconv.Itoa(i))
		writeFile(t, p, []byte(p), 0o644)
		files = append(files, p)
		if _, err := h.SumFile(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.cache.len(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	// 0 was evicted; 2 and 1 are cached, after which 2 is the oldest.
	for i, want := range []bool{true, true, false, false} {
		p := files[[]int{2, 1, 0, 2}[i]]
		r, err := h.SumFile(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cached != want {
			t.Errorf("step %d: %s: Cached = %v, want %v", i, p, r.Cached, want)
		}
	}
}

func TestProcRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	sleep := sleepBinary(t)
	ldd, err := exec.Command("ldd", sleep).Output()
	if err != nil {
		t.Skipf("ldd: %v", err)
	}
	base := t.TempDir()
	root := filepath.Join(base, "root")
	copyInto := func(src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("read %s: %v", src, err)
		}
		dst := filepath.Join(root, src)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dst, b, 0o755)
	}
	for _, f := range strings.Fields(string(ldd)) {
		if strings.HasPrefix(f, "/") {
			copyInto(f)
		}
	}
	copyInto(sleep)
	inside := []byte("the file inside the root\n")
	writeFile(t, filepath.Join(root, "marker"), inside, 0o644)
	writeFile(t, filepath.Join(base, "marker"), []byte("the file outside\n"), 0o644)
	if err := os.Symlink(sleep, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}

	cmd := &exec.Cmd{Path: sleep, Args: []string{"sleep", "30"}, SysProcAttr: &syscall.SysProcAttr{Chroot: root}}
	if err := cmd.Start(); err != nil {
		t.Skipf("start chrooted sleep: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid
	prefix := fmt.Sprintf("/proc/%d/root", pid)
	content, err := os.ReadFile(filepath.Join(root, sleep))
	if err != nil {
		t.Fatal(err)
	}

	openModes(t, func(t *testing.T, h *Hasher) {
		ctx := context.Background()
		h.noProcExe = true
		res, err := h.Sum(ctx, Target{PID: pid, RealPath: prefix + sleep})
		if err != nil {
			t.Fatal(err)
		}
		assertDigests(t, "in-root exe", res.Digests, goDigests(content))
		if res.Source != prefix+sleep {
			t.Errorf("Source = %q", res.Source)
		}
		// ".." is clamped at the process's root, as the process would see it.
		for _, p := range []string{prefix + "/../marker", prefix + "/marker", prefix + "/../../../marker"} {
			res, err = h.SumFile(ctx, p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			assertDigests(t, p, res.Digests, goDigests(inside))
		}
		// Links inside the root are refused.
		if _, err := h.SumFile(ctx, prefix+"/link"); !errors.Is(err, ErrSymlink) {
			t.Errorf("link inside root: err = %v, want ErrSymlink", err)
		}
		// A file of the same name that is not the process's exe.
		if _, err := h.Sum(ctx, Target{PID: pid, RealPath: prefix + "/marker"}); !errors.Is(err, ErrMismatch) {
			t.Errorf("marker as exe: err = %v, want ErrMismatch", err)
		}
	})
}

func TestConcurrency(t *testing.T) {
	dir := t.TempDir()
	const nFiles, nWorkers, perWorker, limit = 12, 24, 30, 3
	type file struct {
		path string
		want map[string]string
	}
	var files []file
	for i := range nFiles {
		b := bytes.Repeat([]byte{byte(i), byte(i * 7)}, 40_000+i*1000)
		p := filepath.Join(dir, fmt.Sprint("f", i))
		writeFile(t, p, b, 0o644)
		files = append(files, file{p, goDigests(b)})
	}
	h := New(Config{MaxConcurrent: limit, CacheEntries: 5})
	var inFlight, maxSeen atomic.Int64
	var over atomic.Bool
	h.hookHashing = func() {
		n := inFlight.Add(1)
		if n > limit {
			over.Store(true)
		}
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		inFlight.Add(-1)
	}
	algoSets := [][]string{nil, {HashMD5}, {HashSHA256}, {HashSHA1, HashMD5}}
	var wg sync.WaitGroup
	for w := range nWorkers {
		wg.Go(func() {
			for i := range perWorker {
				f := files[(w*5+i*3)%nFiles]
				algos := algoSets[(w+i)%len(algoSets)]
				var res *Result
				var err error
				if i%2 == 0 {
					res, err = h.SumFile(context.Background(), f.path, algos...)
				} else {
					res, err = h.Sum(context.Background(), Target{RealPath: f.path}, algos...)
				}
				if err != nil {
					t.Error(err)
					return
				}
				if n := max(len(algos), 1); len(res.Digests) < n {
					t.Errorf("%s: %d digests for %v", f.path, len(res.Digests), algos)
				}
				for a, d := range res.Digests {
					if d != f.want[a] {
						t.Errorf("%s %s = %s, want %s", f.path, a, d, f.want[a])
					}
				}
			}
		})
	}
	wg.Wait()
	if over.Load() || h.peak.Load() > limit {
		t.Errorf("more than %d files hashed at once (peak %d)", limit, h.peak.Load())
	}
	if maxSeen.Load() < 1 {
		t.Error("hook never ran")
	}
	s := h.Stats()
	if s.Hashed+s.CacheHits != nWorkers*perWorker || s.Errors != 0 {
		t.Errorf("stats = %+v, want %d requests", s, nWorkers*perWorker)
	}
	t.Logf("peak in flight %d, stats %+v", h.peak.Load(), s)
}

// blockFirstRead makes the first read of h block until release is closed;
// entered is closed once it blocks.
func blockFirstRead(h *Hasher) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.hookHashing = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	return entered, release
}

func TestCancellation(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeFile(t, a, []byte("a"), 0o644)
	writeFile(t, b, []byte("b"), 0o644)

	h := New(Config{MaxConcurrent: 1})
	entered, release := blockFirstRead(h)
	waiting := make(chan string)
	h.hookWait = func(kind string) { waiting <- kind }
	first := make(chan error, 1)
	go func() {
		_, err := h.SumFile(context.Background(), a)
		first <- err
	}()
	<-entered // a holds the only slot

	// b waits for the slot; a second caller of a waits for the in-flight read.
	for _, tc := range []struct{ path, wait string }{{b, "slot"}, {a, "inflight"}} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := h.SumFile(ctx, tc.path)
			done <- err
		}()
		if kind := <-waiting; kind != tc.wait {
			t.Errorf("%s waits for %q, want %q", tc.path, kind, tc.wait)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", tc.path, err)
		}
	}
	h.hookWait = nil
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// Already cancelled contexts fail before anything is opened.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.SumFile(ctx, b); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if res, err := h.SumFile(context.Background(), b); err != nil || res.Cached {
		t.Errorf("after cancellations: %v, %v", res, err)
	}
	if s := h.Stats(); s.Errors != 3 || s.Hashed != 2 {
		t.Errorf("stats = %+v, want 3 errors and 2 hashed", s)
	}
}

func TestConcurrentSameFileReadOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	content := bytes.Repeat([]byte("x"), 100_000)
	writeFile(t, p, content, 0o644)
	h := New(Config{MaxConcurrent: 4})
	entered, release := blockFirstRead(h)
	const waiters = 5
	waiting := make(chan string, waiters)
	h.hookWait = func(kind string) { waiting <- kind }

	results := make(chan *Result, waiters+1)
	sum := func() {
		res, err := h.SumFile(context.Background(), p)
		if err != nil {
			t.Error(err)
		}
		results <- res
	}
	go sum()
	<-entered
	for range waiters {
		go sum()
	}
	for range waiters {
		if kind := <-waiting; kind != "inflight" {
			t.Errorf("waiting for %q, want inflight", kind)
		}
	}
	close(release)
	cached := 0
	for range waiters + 1 {
		res := <-results
		if res == nil {
			continue
		}
		assertDigests(t, p, res.Digests, goDigests(content))
		if res.Cached {
			cached++
		}
	}
	if s := h.Stats(); s.Hashed != 1 || s.CacheHits != waiters || s.BytesRead != uint64(len(content)) || cached != waiters {
		t.Errorf("stats = %+v, %d cached results; want the file read once and %d hits", s, cached, waiters)
	}
}

func TestFileChangingWhileHashed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	writeFile(t, p, []byte("original"), 0o644)
	for _, tc := range []struct {
		name    string
		changes int // how many reads modify the file
		wantErr error
	}{
		{"settles", 1, nil},
		{"settles late", maxAttempts - 1, nil},
		{"never settles", maxAttempts, ErrFileChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, p, []byte("original"), 0o644)
			h := New(Config{})
			var last []byte
			reads := 0
			h.hookHashing = func() {
				if reads++; reads <= tc.changes {
					// A new size each time: timestamps may not advance
					// between quick rewrites.
					last = bytes.Repeat([]byte{'r'}, 10*reads)
					writeFile(t, p, last, 0o644)
				}
			}
			res, err := h.SumFile(context.Background(), p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			assertDigests(t, p, res.Digests, goDigests(last))
			if res.Size != int64(len(last)) || h.Stats().Hashed != 1 {
				t.Errorf("Size = %d, stats %+v", res.Size, h.Stats())
			}
			if res, err := h.SumFile(context.Background(), p); err != nil || !res.Cached {
				t.Errorf("settled file not cached: %v, %v", res, err)
			}
		})
	}
}

func TestSplitProcRoot(t *testing.T) {
	h := New(Config{})
	tests := []struct {
		in   string
		pid  int
		rest string
		ok   bool
	}{
		{"/proc/123/root/usr/bin/x", 123, "usr/bin/x", true},
		{"/proc/1/root/", 1, "", true},
		{"/proc/1/root", 0, "", false},
		{"/proc/self/root/x", 0, "", false},
		{"/proc/0/root/x", 0, "", false},
		{"/proc/12a/root/x", 0, "", false},
		{"/proc//root/x", 0, "", false},
		{"/usr/bin/x", 0, "", false},
		{"/procx/1/root/x", 0, "", false},
		{"/proc/1/cwd/x", 0, "", false},
	}
	for _, tc := range tests {
		pid, rest, ok := h.splitProcRoot(tc.in)
		if pid != tc.pid || rest != tc.rest || ok != tc.ok {
			t.Errorf("splitProcRoot(%q) = %d, %q, %v; want %d, %q, %v", tc.in, pid, rest, ok, tc.pid, tc.rest, tc.ok)
		}
	}
}
