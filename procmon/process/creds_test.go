package process

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
)

// TestCredentialsOfChildren starts children with other uids, gids, groups
// and capability sets (through setpriv) and checks the Process against
// /proc/<pid>/status and capsh --decode.
func TestCredentialsOfChildren(t *testing.T) {
	proctest.RequireRoot(t, "changes credentials, chroots, forces pids or reads other users' /proc")
	setpriv := proctest.RequireTool(t, "setpriv")
	capsh := proctest.RequireTool(t, "capsh")
	cases := []struct {
		name string
		args []string
		// expectations computed by the kernel are read back from status;
		// these are what setpriv was asked for.
		uid, euid, gid uint32
		groups         []uint32
		ambient        []string
	}{
		{"uid 1000 with ambient net_raw",
			[]string{"--reuid=1000", "--regid=1000", "--groups=1000,27",
				"--inh-caps=+net_raw,+net_bind_service", "--ambient-caps=+net_raw,+net_bind_service",
				"--bounding-set=-sys_admin"},
			1000, 1000, 1000, []uint32{27, 1000}, []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}},
		{"euid 0 real 1234 no_new_privs",
			[]string{"--ruid=1234", "--rgid=4321", "--clear-groups", "--no-new-privs"},
			1234, 0, 4321, nil, nil},
		{"root without cap_sys_admin",
			[]string{"--inh-caps=-all", "--bounding-set=-sys_admin,-net_admin"},
			0, 0, 0, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.args...), "/bin/sleep", "60")
			c := startChild(t, exec.Command(setpriv, args...), false)
			proctest.WaitComm(t, c.PID, "/bin/sleep")
			p := ReadProcess(c.PID)
			if p == nil {
				t.Fatal("nil")
			}
			cr := p.Creds
			if cr.UID != tc.uid || cr.EUID != tc.euid || cr.GID != tc.gid {
				t.Errorf("uid/euid/gid = %d/%d/%d, want %d/%d/%d", cr.UID, cr.EUID, cr.GID, tc.uid, tc.euid, tc.gid)
			}
			if p.UID != int(cr.EUID) {
				t.Errorf("UID %d is not the effective uid %d", p.UID, cr.EUID)
			}
			if fmt.Sprint(cr.Groups) != fmt.Sprint(tc.groups) && !(len(cr.Groups) == 0 && len(tc.groups) == 0) {
				t.Errorf("groups %v, want %v", cr.Groups, tc.groups)
			}
			// Every id and set against the status file, read independently.
			ids := func(a, b, c, d uint32) string { return fmt.Sprintf("%d\t%d\t%d\t%d", a, b, c, d) }
			if got, want := ids(cr.UID, cr.EUID, cr.SUID, cr.FSUID), statusField(t, c.PID, "Uid"); got != want {
				t.Errorf("Uid %q, status %q", got, want)
			}
			if got, want := ids(cr.GID, cr.EGID, cr.SGID, cr.FSGID), statusField(t, c.PID, "Gid"); got != want {
				t.Errorf("Gid %q, status %q", got, want)
			}
			if got, want := cr.NoNewPrivs, statusField(t, c.PID, "NoNewPrivs") == "1"; got != want {
				t.Errorf("NoNewPrivs %v, status %v", got, want)
			}
			sets := map[string]CapSet{"CapInh": cr.CapInheritable, "CapPrm": cr.CapPermitted,
				"CapEff": cr.CapEffective, "CapBnd": cr.CapBounding, "CapAmb": cr.CapAmbient}
			for key, set := range sets {
				hex := statusField(t, c.PID, key)
				if set.Hex() != hex {
					t.Errorf("%s %s, status %s", key, set.Hex(), hex)
				}
				// Names agree with capsh --decode (lower case, no order
				// guarantee beyond number order, which both use).
				out, err := exec.Command(capsh, "--decode="+hex).Output()
				if err != nil {
					t.Fatal(err)
				}
				_, decoded, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
				if got := strings.ToLower(strings.Join(set.Names(), ",")); got != decoded {
					t.Errorf("%s names %q, capsh says %q", key, got, decoded)
				}
			}
			if tc.ambient != nil && fmt.Sprint(cr.CapAmbient.Names()) != fmt.Sprint(tc.ambient) {
				t.Errorf("ambient %v, want %v", cr.CapAmbient.Names(), tc.ambient)
			}
			if cr.UserNS == 0 || !cr.InHostUserNS() {
				t.Errorf("user namespace %d, want the initial one", cr.UserNS)
			}
		})
	}
}

// TestUserNamespace: a child in a new user namespace reports it.
func TestUserNamespace(t *testing.T) {
	unshare := proctest.RequireTool(t, "unshare")
	c := startChild(t, exec.Command(unshare, "--user", "--map-root-user", "/bin/sleep", "60"), false)
	proctest.WaitComm(t, c.PID, "/bin/sleep")
	p := FindProcess(c.PID, false)
	if p == nil {
		t.Fatal("nil")
	}
	p.Complete() // the user namespace is read on first use
	if p.Creds.UserNS == 0 || p.Creds.InHostUserNS() {
		t.Errorf("UserNS %d: want a new user namespace", p.Creds.UserNS)
	}
	link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", c.PID))
	if want := "user:[" + strconv.FormatUint(p.Creds.UserNS, 10) + "]"; link != want {
		t.Errorf("ns link %q, UserNS %d", link, p.Creds.UserNS)
	}
}

// TestChrootedChild: the exe link of a chrooted process is the host path of
// the binary (the chroot directory included); Root is the chroot.
func TestChrootedChild(t *testing.T) {
	proctest.RequireRoot(t, "changes credentials, chroots, forces pids or reads other users' /proc")
	dir := t.TempDir()
	newRoot := makeRootWithSleep(t, dir)
	c := startChild(t, exec.Command("chroot", newRoot, "/bin/sleep", "60"), false)
	proctest.WaitComm(t, c.PID, "/bin/sleep")
	p := FindProcess(c.PID, false)
	if p == nil {
		t.Fatal("nil")
	}
	want := filepath.Join(newRoot, "bin/sleep")
	if p.Path != want || p.RealPath != want {
		t.Errorf("Path %q RealPath %q, want %q", p.Path, p.RealPath, want)
	}
	if p.RootDir() != newRoot {
		t.Errorf("RootDir %q, want %q", p.RootDir(), newRoot)
	}
	if full := ReadProcess(c.PID); full == nil || full.Root != newRoot {
		t.Errorf("ReadProcess: %+v, want Root %q", full, newRoot)
	}
}

// TestMountNamespaceChild: a process in another mount namespace sees its
// binary at a path the host does not have; RealPath reaches it through
// /proc/<pid>/root.
func TestMountNamespaceChild(t *testing.T) {
	proctest.RequireRoot(t, "changes credentials, chroots, forces pids or reads other users' /proc")
	unshare := proctest.RequireTool(t, "unshare")
	dir := t.TempDir()
	copyFile(t, "/bin/sleep", filepath.Join(dir, "sleep-in-ns"), 0o755)
	script := fmt.Sprintf("mount --bind %s /mnt && exec /mnt/sleep-in-ns 60", dir)
	c := startChild(t, exec.Command(unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", script), false)
	proctest.WaitComm(t, c.PID, "sleep-in-ns")
	p := FindProcess(c.PID, false)
	if p == nil {
		t.Fatal("nil")
	}
	if p.Path != "/mnt/sleep-in-ns" {
		t.Errorf("Path %q, want /mnt/sleep-in-ns", p.Path)
	}
	if got, _, _ := p.ExeFile(); got != fmt.Sprintf("/proc/%d/root/mnt/sleep-in-ns", c.PID) {
		t.Errorf("RealPath %q, want it under /proc/%d/root", got, c.PID)
	}
	self := FindProcess(os.Getpid(), false)
	if p.Namespaces().Mnt == self.Namespaces().Mnt || p.Namespaces().Mnt == 0 {
		t.Errorf("mount namespace %d, want one other than %d", p.Namespaces().Mnt, self.Namespaces().Mnt)
	}
}

// makeRootWithSleep builds a minimal root: sleep and the libraries ldd
// names, at their paths.
func makeRootWithSleep(t *testing.T, dir string) string {
	t.Helper()
	proctest.RequireTool(t, "ldd")
	out, err := exec.Command("ldd", "/bin/sleep").Output()
	if err != nil {
		t.Skipf("ldd /bin/sleep: %v", err)
	}
	files := []string{"/bin/sleep"}
	for _, l := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		real, _ := filepath.EvalSymlinks(f)
		copyFile(t, real, dst, 0o755)
	}
	return dir
}
