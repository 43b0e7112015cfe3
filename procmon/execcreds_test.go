package procmon

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// nobody is the user and group the exec'd binaries of these tests run as.
const nobody = 65534

// execBin is a copy of sleep that changes credentials at exec, or not.
type execBin struct {
	name       string
	path       string
	uid, gid   int         // the file's owner
	mode       os.FileMode // with ModeSetuid, ModeSetgid
	fcap       []byte      // security.capability, if any
	uidEvent   bool        // the exec changes ids: the kernel sends a uid or gid event first
	capsChange bool        // the exec changes the capability sets
}

// fileCaps is a security.capability value (struct vfs_cap_data, little
// endian) of the given revision (2 or 3; 3 with root id 0) with the
// permitted set perm and the effective flag.
func fileCaps(rev int, perm process.CapSet) []byte {
	const effective = 0x000001
	b := binary.LittleEndian.AppendUint32(nil, uint32(rev)<<24|effective)
	b = binary.LittleEndian.AppendUint32(b, uint32(perm))     // data[0].permitted
	b = binary.LittleEndian.AppendUint32(b, 0)                // data[0].inheritable
	b = binary.LittleEndian.AppendUint32(b, uint32(perm>>32)) // data[1].permitted
	b = binary.LittleEndian.AppendUint32(b, 0)                // data[1].inheritable
	if rev == 3 {
		b = binary.LittleEndian.AppendUint32(b, 0) // rootid
	}
	return b
}

// execBins writes the copies of sleep the tests exec as nobody, in a
// directory nobody may search; it skips t when the file system keeps no
// file capabilities.
func execBins(t *testing.T) []execBin {
	t.Helper()
	proctest.RequireRoot(t, "set-user-ID files, file capabilities and running as nobody")
	sleep := proctest.RequireTool(t, "sleep")
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const netRaw = process.CapSet(1) << unix.CAP_NET_RAW
	bins := []execBin{
		{name: "plain", mode: 0o755},
		{name: "suid-root", mode: 0o755 | os.ModeSetuid, uidEvent: true, capsChange: true},
		{name: "suid-1000", uid: 1000, mode: 0o755 | os.ModeSetuid, uidEvent: true},
		{name: "sgid-1000", gid: 1000, mode: 0o755 | os.ModeSetgid, uidEvent: true},
		{name: "fcap-v2", mode: 0o755, fcap: fileCaps(2, netRaw), capsChange: true},
		{name: "fcap-v3", mode: 0o755, fcap: fileCaps(3, netRaw), capsChange: true},
	}
	for i := range bins {
		b := &bins[i]
		b.path = filepath.Join(dir, b.name)
		if err := os.WriteFile(b.path, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(b.path, b.uid, b.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(b.path, b.mode); err != nil { // after chown, which clears the set-ID bits
			t.Fatal(err)
		}
		if b.fcap != nil {
			if err := unix.Setxattr(b.path, "security.capability", b.fcap, 0); err != nil {
				t.Skipf("setxattr security.capability on %s: %v", dir, err)
			}
		}
	}
	return bins
}

// asNobody makes cmd run as nobody, without supplementary groups.
func asNobody(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return cmd
}

// checkCreds compares an event's credentials with those /proc shows (the
// user namespace aside: status does not tell it).
func checkCreds(t *testing.T, what string, got process.Credentials, want process.Credentials) {
	t.Helper()
	want.UserNS = got.UserNS
	if !sameCreds(got, want) {
		t.Errorf("%s: credentials\n%+v, want (/proc)\n%+v", what, got, want)
	}
}

// TestExecCredsChecked: an exec whose fork (here: the process before the
// exec) the monitor knows keeps those credentials without a read of
// /proc/<pid>/status when the exec changes none (capget tells the
// capability sets, the uid and gid events the ids); binaries with file
// capabilities (v2 and v3), which change the capability sets with no uid
// event, have them read; set-ID binaries get theirs from the uid or gid
// event the kernel sends first. Each checked against /proc after the
// exec.
func TestExecCredsChecked(t *testing.T) {
	sh := proctest.RequireTool(t, "sh")
	for _, b := range execBins(t) {
		t.Run(b.name, func(t *testing.T) {
			c := proctest.Start(t, asNobody(exec.Command(sh, "-c", `read x; exec "$0" 30`, b.path)))
			proctest.WaitComm(t, c.PID, sh)
			m, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			before := process.ReadProcess(c.PID)
			if before == nil || before.Creds.EUID != nobody || before.Creds.CapBounding == 0 {
				t.Fatalf("before the exec: %+v", before)
			}
			m.cache.Put(before)
			if _, err := c.Stdin.Write([]byte("\n")); err != nil {
				t.Fatal(err)
			}
			proctest.WaitComm(t, c.PID, b.path)
			want, err := process.NewReader().Creds(c.PID)
			if err != nil {
				t.Fatal(err)
			}
			if changed := want.CapPermitted != before.Creds.CapPermitted || want.CapEffective != before.Creds.CapEffective; changed != b.capsChange {
				t.Fatalf("the exec changed the capability sets: %v, want %v (%+v)", changed, b.capsChange, want)
			}

			s := &batchSink{m: m}
			if b.uidEvent {
				kind := process.EventUID
				if b.mode&os.ModeSetgid != 0 {
					kind = process.EventGID
				}
				// As the proc connector sends it: the real and
				// effective ids.
				s.Event(&process.Event{Kind: kind, PID: c.PID, Creds: &process.CredChange{New: process.Credentials{
					UID: want.UID, EUID: want.EUID, GID: want.GID, EGID: want.EGID}}})
			}
			s.Event(&process.Event{Kind: process.EventExec, PID: c.PID})
			s.Flush(true)
			var ex *Event
			for len(m.events) > 0 {
				if ev := <-m.events; ev.Kind == EventExec {
					ex = &ev
				}
			}
			if ex == nil || ex.Process == nil || ex.Process.Path != b.path || ex.Process.Key() != before.Key() {
				t.Fatalf("exec event %+v, want %s of %v", ex, b.path, before.Key())
			}
			checkCreds(t, b.name, ex.Process.Creds, want)
			// The uid event's handling read them after the exec
			// (the kernel sends it once they are committed).
			reads := uint64(0)
			if b.capsChange && !b.uidEvent {
				reads = 1
			}
			if got := m.execCredReads.Load(); got != reads {
				t.Errorf("%d status reads for the exec's credentials, want %d", got, reads)
			}
		})
	}
}

// TestExecCredsNetlink: the exec events the netlink method reports of
// binaries run as nobody (started by this process, which runs as root:
// the child changes its ids before the exec) carry the credentials /proc
// shows after the exec, for plain, set-user-ID, set-group-ID and
// file-capability binaries, through the kernel's own events.
func TestExecCredsNetlink(t *testing.T) {
	bins := execBins(t)
	m, col := startMonitor(t, Config{Method: MethodNetlink})
	if m.Method() != MethodNetlink {
		t.Skipf("netlink does not run here: %+v", m.Status())
	}
	for _, b := range bins {
		t.Run(b.name, func(t *testing.T) {
			c := proctest.Start(t, asNobody(exec.Command(b.path, "30")))
			proctest.WaitComm(t, c.PID, b.path)
			want, err := process.NewReader().Creds(c.PID)
			if err != nil {
				t.Fatal(err)
			}
			var ex Event
			waitFor(t, 5*time.Second, func() bool {
				col.mu.Lock()
				defer col.mu.Unlock()
				i := slices.IndexFunc(col.events, func(ev Event) bool {
					return ev.Kind == EventExec && ev.PID == c.PID && ev.Process != nil && ev.Process.Path == b.path
				})
				if i >= 0 {
					ex = col.events[i]
				}
				return i >= 0
			})
			checkCreds(t, b.name, ex.Process.Creds, want)
		})
	}
}
