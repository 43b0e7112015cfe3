package cache

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

func allAlgos(s *EventsStore) {
	s.AddChecksumHash(process.HashMD5)
	s.AddChecksumHash(process.HashSHA1)
	s.AddChecksumHash(process.HashSHA256)
}

// TestDigestsMatchCoreutils: every running process's binary, hashed by the
// store, equals md5sum, sha1sum and sha256sum of /proc/<pid>/exe.
func TestDigestsMatchCoreutils(t *testing.T) {
	requireRoot(t)
	s := New(Config{})
	allAlgos(s)
	s.SetComputeChecksums(true)
	pids, err := process.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, pid := range pids {
		p := process.FindProcess(pid, false)
		if p == nil || p.KernelThread {
			continue
		}
		exe := "/proc/" + strconv.Itoa(pid) + "/exe"
		if _, err := os.Stat(exe); err != nil {
			continue // not ours to read (a protected pid 1) or gone
		}
		s.Add(p)
		item, found := s.Get(p.Key())
		if !found {
			continue
		}
		sums := item.Proc.Checksums
		if len(sums) == 0 {
			if process.FindProcess(pid, false) == nil {
				continue // exited meanwhile
			}
			t.Errorf("pid %d (%s): no checksums", pid, p.Path)
			continue
		}
		// The binary is opened once, so that coreutils reads it even if
		// the process exits meanwhile.
		f, err := os.Open(exe)
		if err != nil {
			continue // exited meanwhile
		}
		for algo, tool := range map[string]string{process.HashMD5: "md5sum", process.HashSHA1: "sha1sum", process.HashSHA256: "sha256sum"} {
			want := coreutilsSumOf(t, tool, f)
			if sums[algo] != want {
				t.Errorf("pid %d (%s) %s = %s, %s says %s", pid, p.Path, algo, sums[algo], tool, want)
			}
		}
		f.Close()
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d processes checked", checked)
	}
	t.Logf("%d processes' binaries agree with coreutils; %d hashed, %d failed", checked, s.Stats().Checksums, s.Stats().ChecksumErrs)
}

// TestDeletedBinaryHashed: a binary deleted after it started is hashed
// through /proc/<pid>/exe.
func TestDeletedBinaryHashed(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sleeper")
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	c := start(t, exec.Command(bin, "60"), "sleeper")
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	s := New(Config{})
	s.AddChecksumHash(process.HashSHA256)
	s.SetComputeChecksums(true)
	p := find(t, c.PID)
	if !p.ExeDeleted {
		t.Fatal("binary not seen as deleted")
	}
	s.Add(p)
	sum := sha256.Sum256(data)
	md := md5.Sum(data)
	if got := p.Checksums[process.HashSHA256]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %q, want %x", got, sum)
	}
	if got := p.Checksums[process.HashMD5]; got != hex.EncodeToString(md[:]) {
		t.Errorf("md5 %q, want %x", got, md)
	}
}

// TestBackfill: enabling checksums computes them for processes cached before.
func TestBackfill(t *testing.T) {
	s := New(Config{})
	c := start(t, exec.Command("/bin/sleep", "60"), "sleep")
	s.Add(find(t, c.PID))
	item, _ := s.IsInStoreByPID(c.PID)
	if item.Proc.ChecksumsCount() != 0 {
		t.Fatal("checksums computed while disabled")
	}
	if s.GetComputeChecksums() {
		t.Fatal("enabled by default")
	}
	s.SetComputeChecksums(true)
	if item.Proc.ChecksumsCount() != 0 {
		t.Error("the back-fill changed a version handed out before")
	}
	item, _ = s.IsInStoreByPID(c.PID)
	got := item.Proc.Checksums[process.HashMD5]
	if want := proctest.CoreutilsSum(t, "md5sum", "/bin/sleep"); got != want {
		t.Errorf("back-filled md5 %q, want %q", got, want)
	}
	s.DisableChecksums()
	if s.GetComputeChecksums() {
		t.Error("DisableChecksums left them on")
	}
	s.SetComputeChecksums(true)
	s.DelChecksumHash(process.HashMD5)
	if s.GetComputeChecksums() {
		t.Error("on with no algorithm selected")
	}
}

// TestPIDReuseNotInherited forces a pid to be reused by another binary: the
// new process must not be reported as the old one, nor inherit its path or
// checksums.
func TestPIDReuseNotInherited(t *testing.T) {
	requireRoot(t)
	s := New(Config{})
	allAlgos(s)
	s.SetComputeChecksums(true)
	first := start(t, exec.Command("/bin/sleep", "60"), "sleep")
	oldProc := find(t, first.PID)
	s.Add(oldProc)
	oldSums := oldProc.Checksums[process.HashSHA256]
	if oldSums == "" {
		t.Fatal("no checksum for the first process")
	}
	first.Stop()
	time.Sleep(20 * time.Millisecond) // let a clock tick pass (see process.Key)

	second := proctest.ForcePID(t, first.PID, func() *exec.Cmd { return exec.Command("/bin/cat") })
	proctest.WaitComm(t, second.PID, "cat")
	if item, found := s.IsInStoreByPID(first.PID); found {
		t.Fatalf("a reused pid was reported as its old process %s", item.Proc.Path)
	}
	if s.Stats().PIDReuses == 0 {
		t.Error("reuse not counted")
	}
	newProc := find(t, second.PID)
	s.Add(newProc)
	item, found := s.IsInStoreByPID(first.PID)
	if !found || item.Proc != newProc {
		t.Fatal("new process not found by pid")
	}
	cat, _ := filepath.EvalSymlinks("/bin/cat")
	if item.Proc.Path != cat || item.Proc.Checksums[process.HashSHA256] == oldSums ||
		item.Proc.Checksums[process.HashSHA256] != proctest.CoreutilsSum(t, "sha256sum", cat) {
		t.Errorf("new process: path %q sha256 %q (old %q)", item.Proc.Path, item.Proc.Checksums[process.HashSHA256], oldSums)
	}
	old, found := s.Get(oldProc.Key())
	if !found || old.Exited == 0 || old.Proc.Path == cat {
		t.Errorf("old entry: %+v found %v", old, found)
	}
}

// coreutilsSumOf returns the digest tool (md5sum, sha1sum, sha256sum) prints
// for the whole of f, given as its standard input.
func coreutilsSumOf(t *testing.T, tool string, f *os.File) string {
	t.Helper()
	path := proctest.RequireTool(t, tool)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	cmd.Stdin = f
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s < %s: %v", tool, f.Name(), err)
	}
	return strings.Fields(string(out))[0]
}
