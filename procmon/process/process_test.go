package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

func TestFindProcessArgsEnvComm(t *testing.T) {
	args := []string{"arg with spaces", "", "x) y (z", "  leading", "last"}
	cmd := helperCmd("comm=a) b c", args...)
	cmd.Env = append(cmd.Env, "WITH_EQ=a=b=c", "EMPTY=", "SPACES=one two")
	c := startChild(t, cmd, true)

	p := FindProcess(c.PID, false)
	if p == nil {
		t.Fatal("FindProcess returned nil for a live child")
	}
	if want := append([]string{os.Args[0]}, args...); !reflect.DeepEqual(p.Args, want) {
		t.Errorf("Args = %q, want %q", p.Args, want)
	}
	for k, want := range map[string]string{"WITH_EQ": "a=b=c", "EMPTY": "", "SPACES": "one two"} {
		if got, ok := p.Env[k]; !ok || got != want {
			t.Errorf("Env[%s] = %q (present %v), want %q", k, got, ok, want)
		}
	}
	if p.Comm != "a) b c" {
		t.Errorf("Comm = %q, want %q", p.Comm, "a) b c")
	}
	exe, _ := filepath.EvalSymlinks(os.Args[0])
	if p.Path != exe || p.RealPath != exe {
		t.Errorf("Path, RealPath = %q, %q, want %q", p.Path, p.RealPath, exe)
	}
	if p.PPID != os.Getpid() {
		t.Errorf("PPID = %d, want %d", p.PPID, os.Getpid())
	}
	if wd, _ := os.Getwd(); p.CWD != wd {
		t.Errorf("CWD = %q, want %q", p.CWD, wd)
	}
	if p.Starttime == 0 || p.StartedAt.IsZero() {
		t.Errorf("start time not set: %d %v", p.Starttime, p.StartedAt)
	}
	if got, want := p.Key().String(), strconv.Itoa(c.PID)+"-"+strconv.FormatInt(p.Starttime, 10); got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	if !p.IsAlive() {
		t.Error("IsAlive = false for a live child")
	}
	self := FindProcess(os.Getpid(), false)
	if self == nil || self.NS != p.NS || self.Cgroup != p.Cgroup {
		t.Errorf("child namespaces/cgroup differ from parent's: %+v %q vs %+v", p.NS, p.Cgroup, self)
	}
}

// TestFindProcessAgreesWithPs compares every process on the machine with ps
// and with /proc/<pid>/cmdline.
func TestFindProcessAgreesWithPs(t *testing.T) {
	proctest.RequireTool(t, "ps")
	out, err := exec.Command("ps", "-e", "-o", "pid=,ppid=,euid=,comm=").Output()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		// comm is the rest of the line after three fields.
		rest := strings.TrimLeft(line, " ")
		for i := 0; i < 3; i++ {
			rest = strings.TrimLeft(rest[strings.IndexByte(rest, ' '):], " ")
		}
		p := FindProcess(pid, false)
		if p == nil {
			continue // exited since ps ran (ps itself, for one)
		}
		if strconv.Itoa(p.PPID) != f[1] || strconv.Itoa(p.UID) != f[2] {
			t.Errorf("pid %d: ppid, uid = %d, %d; ps says %s, %s", pid, p.PPID, p.UID, f[1], f[2])
		}
		comm := p.Comm
		if len(comm) > len(rest) {
			comm = comm[:len(rest)] // ps cuts kworker names
		}
		if strings.HasPrefix(comm, "kworker/") {
			// A kworker's name carries the work queue it runs now, which
			// changes between the ps run and this read.
			comm, _, _ = strings.Cut(comm, "-")
			rest, _, _ = strings.Cut(rest, "-")
		}
		if comm != rest {
			t.Errorf("pid %d: comm %q, ps says %q", pid, p.Comm, rest)
		}
		raw, err := os.ReadFile("/proc/" + f[0] + "/cmdline")
		if err != nil {
			continue
		}
		if joined := strings.Join(p.Args, "\x00"); len(raw) > 0 && joined != strings.TrimSuffix(string(raw), "\x00") {
			t.Errorf("pid %d: Args %q do not rebuild cmdline %q", pid, p.Args, raw)
		}
		if p.KernelThread != (p.Path == KernelConnection) {
			t.Errorf("pid %d: KernelThread %v but Path %q", pid, p.KernelThread, p.Path)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d processes checked", checked)
	}
	t.Logf("%d processes agree with ps", checked)
}

func TestKernelThread(t *testing.T) {
	p := FindProcess(2, false) // kthreadd
	if p == nil || !p.KernelThread {
		t.Skipf("pid 2 is not a kernel thread in this pid namespace (%+v)", p)
	}
	if p.Path != KernelConnection || len(p.Args) != 0 || p.RealPath != "" {
		t.Errorf("kernel thread: Path %q RealPath %q Args %q", p.Path, p.RealPath, p.Args)
	}
}

func TestDeletedBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sleep copy")
	copyFile(t, "/bin/sleep", bin, 0o755)
	c := startChild(t, exec.Command(bin, "60"), false)
	proctest.WaitComm(t, c.PID, bin)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	p := FindProcess(c.PID, false)
	if p == nil {
		t.Fatal("nil")
	}
	if p.Path != bin || !p.ExeDeleted {
		t.Errorf("Path %q ExeDeleted %v, want %q true", p.Path, p.ExeDeleted, bin)
	}
	if p.RealPath != bin {
		t.Errorf("RealPath %q, want %q (nothing better exists)", p.RealPath, bin)
	}
	if p.ExeInode == 0 {
		t.Error("ExeInode not set for a deleted binary (it is still readable through /proc/<pid>/exe)")
	}
}

// TestNotDeletedButNamedSo: a binary whose name ends in " (deleted)" keeps it.
func TestNotDeletedButNamedSo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sleep (deleted)")
	copyFile(t, "/bin/sleep", bin, 0o755)
	c := startChild(t, exec.Command(bin, "60"), false)
	proctest.WaitComm(t, c.PID, bin)
	p := FindProcess(c.PID, false)
	if p == nil || p.Path != bin || p.ExeDeleted {
		t.Fatalf("got %+v, want Path %q not deleted", p, bin)
	}
}

func TestExecThroughProcSelfAndFd(t *testing.T) {
	sleep, _ := filepath.EvalSymlinks("/bin/sleep")
	// exec through a descriptor: the kernel's exe link names the file, and
	// SetPath must turn the reported /proc/self/fd/N path into it.
	sh := exec.Command("/bin/sh", "-c", "exec 3</bin/sleep; exec /proc/self/fd/3 60")
	c := startChild(t, sh, false)
	proctest.WaitComm(t, c.PID, "/proc/self/fd/3") // comm becomes "3"
	p := FindProcess(c.PID, false)
	if p == nil {
		t.Fatal("nil")
	}
	if p.Path != sleep {
		t.Errorf("Path %q, want %q", p.Path, sleep)
	}
	p.SetPath("/proc/self/fd/3")
	if p.Path != sleep || p.RealPath != sleep {
		t.Errorf("SetPath(/proc/self/fd/3): Path %q RealPath %q, want %q", p.Path, p.RealPath, sleep)
	}
	// argv[0] /proc/self/exe (AppImage style) is replaced by the path.
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), "PROCTRACK_HELPER=plain")
	cmd.Path = "/proc/self/exe"
	c2 := startChild(t, cmd, true)
	p2 := FindProcess(c2.PID, false)
	exe, _ := filepath.EvalSymlinks(os.Args[0])
	if p2 == nil || len(p2.Args) == 0 || p2.Args[0] != exe {
		t.Errorf("Args[0] after CleanArgs = %v, want %q", p2, exe)
	}
}

func TestRelativeSetPath(t *testing.T) {
	p := NewProcessEmpty(0, "x")
	p.CWD = "/usr/bin"
	p.SetPath("./env")
	if p.Path != "/usr/bin/env" {
		t.Errorf("Path %q, want /usr/bin/env", p.Path)
	}
}

func TestIsAliveAndReuse(t *testing.T) {
	c := startChild(t, helperCmd("plain"), true)
	p := FindProcess(c.PID, false)
	if p == nil || !p.IsAlive() {
		t.Fatal("child not alive")
	}
	older := NewProcessEmpty(p.ID, "")
	older.Starttime = p.Starttime - 1 // the same pid, another process
	if older.IsAlive() {
		t.Error("a process whose start time differs is reported alive")
	}
	if err := older.GetDetails(); !errors.Is(err, ErrGone) {
		t.Errorf("GetDetails on a reused pid: %v, want ErrGone", err)
	}
	c.Stop()
	if p.IsAlive() {
		t.Error("reaped child reported alive")
	}
	if FindProcess(c.PID, false) != nil {
		t.Error("FindProcess found a reaped child")
	}
}

func TestParentTreeIsChild(t *testing.T) {
	c := startChild(t, helperCmd("plain"), true)
	p := FindProcess(c.PID, false)
	p.BuildTree()
	if len(p.Tree) == 0 || p.Tree[0].Value != uint32(os.Getpid()) {
		t.Fatalf("Tree %v does not start with the test process %d", p.Tree, os.Getpid())
	}
	if p.Parent == nil || p.Parent.Path != p.Path {
		t.Fatalf("Parent %+v", p.Parent)
	}
	if !p.IsChild() {
		t.Error("a fork of the test binary is not IsChild")
	}
	last := p.Tree[len(p.Tree)-1]
	if last.Value != 1 {
		t.Errorf("Tree ends at %d, want 1", last.Value)
	}
	sl := startChild(t, exec.Command("/bin/sleep", "60"), false)
	proctest.WaitComm(t, sl.PID, "sleep")
	if q := FindProcess(sl.PID, false); q == nil || q.IsChild() {
		t.Error("a child running another binary is IsChild")
	}
}

func TestFindProcessUnknown(t *testing.T) {
	if FindProcess(-1, false) != nil {
		t.Error("FindProcess(-1, false) != nil")
	}
	if p := FindProcess(-1, true); p == nil || p.ID != -1 {
		t.Errorf("FindProcess(-1, true) = %+v", p)
	}
	if FindProcess(1<<22+1, false) != nil { // above pid_max
		t.Error("nonexistent pid found")
	}
}

func TestGetExtraInfoAndDumpImage(t *testing.T) {
	c := startChild(t, helperCmd("plain"), true)
	p := FindProcess(c.PID, false)
	if err := p.GetExtraInfo(); err != nil {
		t.Fatal(err)
	}
	if p.Statm == nil || p.Statm.Size == 0 || p.Maps == "" || !strings.HasPrefix(p.Stat, strconv.Itoa(c.PID)+" (") {
		t.Errorf("extra info missing: statm %+v maps %d stat %q", p.Statm, len(p.Maps), p.Stat)
	}
	if p.IOStats == nil || p.NetStats == nil {
		t.Errorf("io %+v net %+v", p.IOStats, p.NetStats)
	}
	var sawStdin bool
	for _, d := range p.Descriptors {
		if d.FD == 0 && strings.HasPrefix(d.Target, "pipe:") {
			sawStdin = true
		}
	}
	if !sawStdin {
		t.Errorf("fd 0 (a pipe) not among %d descriptors", len(p.Descriptors))
	}
	img, err := p.DumpImage()
	if err != nil {
		proctest.RequireRoot(t, "changes credentials, chroots, forces pids or reads other users' /proc")
		t.Fatal(err)
	}
	if !bytes.HasPrefix(img, []byte("\x7fELF")) {
		t.Errorf("image does not start with the ELF header: % x", img[:min(8, len(img))])
	}
}

func TestSerializeJSON(t *testing.T) {
	p := FindProcess(os.Getpid(), false)
	p.BuildTree()
	b, err := json.Marshal(p.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "pid", "ppid", "uid", "comm", "path", "args", "start_ticks", "start_time", "creds", "namespaces", "tree"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if m["id"] != p.Key().String() {
		t.Errorf("id %v, want %s", m["id"], p.Key())
	}
}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func TestReadCommAndPPID(t *testing.T) {
	c := startChild(t, helperCmd("comm=renamed"), true)
	p := NewProcessEmpty(c.PID, "")
	if err := p.ReadComm(); err != nil || p.Comm != "renamed" {
		t.Errorf("ReadComm: %q %v", p.Comm, err)
	}
	p.ReadPPID()
	if p.PPID != os.Getpid() {
		t.Errorf("ReadPPID: %d, want %d", p.PPID, os.Getpid())
	}
}

// TestZombie: a child that exited and was not reaped is found as a zombie,
// not as a running process with empty details.
func TestZombie(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	for i := 0; i < 1000; i++ {
		if p := NewProcess(pid, ""); p.Zombie {
			break
		}
		time.Sleep(time.Millisecond)
	}
	p := FindProcess(pid, false)
	if p == nil || !p.Zombie || p.IsAlive() || p.Path != "" || p.Incomplete {
		t.Fatalf("zombie read as %+v", p)
	}
	if _, err := CurrentKey(pid); !errors.Is(err, ErrGone) {
		t.Errorf("CurrentKey of a zombie: %v, want ErrGone", err)
	}
}

// TestHardLinkRunByDeletedName: a binary with two hard links, run by one
// name that is then deleted. The kernel appends " (deleted)" to the exe link
// although the file keeps a link: the name it ran by is gone.
func TestHardLinkRunByDeletedName(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	copyFile(t, "/bin/sleep", a, 0o755)
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, exec.Command(a, "60"), false)
	proctest.WaitComm(t, c.PID, a)
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	link, err := os.Readlink("/proc/" + strconv.Itoa(c.PID) + "/exe")
	if err != nil || link != a+" (deleted)" {
		t.Skipf("the kernel names the exe %q (%v), not %q", link, err, a+" (deleted)")
	}
	p := FindProcess(c.PID, false)
	if p == nil {
		t.Fatal("nil")
	}
	if p.Path != a || !p.ExeDeleted {
		t.Errorf("Path %q ExeDeleted %v, want %q true", p.Path, p.ExeDeleted, a)
	}
}

// TestGetExtraInfoWithoutStartTime: a Process made without reading /proc is
// the process that has the pid now, not a reused pid.
func TestGetExtraInfoWithoutStartTime(t *testing.T) {
	c := startChild(t, helperCmd("plain"), true)
	for name, p := range map[string]*Process{
		"NewProcessEmpty":      NewProcessEmpty(c.PID, ""),
		"NewProcessWithParent": NewProcessWithParent(c.PID, os.Getpid(), ""),
		"literal":              {ID: c.PID},
	} {
		if err := p.GetExtraInfo(); err != nil || p.Incomplete {
			t.Errorf("%s: GetExtraInfo: %v, Incomplete %v", name, err, p.Incomplete)
		}
		if p.Statm == nil || p.Statm.Size == 0 || p.Starttime == 0 {
			t.Errorf("%s: Statm %+v Starttime %d", name, p.Statm, p.Starttime)
		}
	}
}
