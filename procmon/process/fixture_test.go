package process

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// withProcRoot points the package at a fixture proc tree for one test.
func withProcRoot(t *testing.T, root string) {
	t.Helper()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
}

// fixture writes files of one pid under root.
func fixture(t *testing.T, root string, pid string, files map[string]string) {
	t.Helper()
	dir := filepath.Join(root, pid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const goodStatus = "Name:\tx\nTgid:\t42\nPPid:\t1\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t9 10\n" +
	"CapInh:\t0000000000000000\nCapPrm:\t0000000000002000\nCapEff:\t0000000000002000\n" +
	"CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"

func stat(comm string) string {
	return "42 (" + comm + ") S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 100 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
}

// lazyStatus ends the names of the TestFixtureTrees cases whose bad input
// is the status file, which FindProcess leaves for later.
const lazyStatus = " (read later by FindProcess)"

func TestFixtureTrees(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		wantErr error // nil: success
		check   func(t *testing.T, p *Process)
	}{
		{"whole", map[string]string{"stat": stat("a) (b c"), "status": goodStatus, "cmdline": "x\x00a b\x00\x00", "environ": "K=v=w\x00E=\x00"}, nil,
			func(t *testing.T, p *Process) {
				if p.Comm != "a) (b c" || p.PPID != 1 || p.Starttime != 12345 {
					t.Errorf("stat fields: %q %d %d", p.Comm, p.PPID, p.Starttime)
				}
				if len(p.Args) != 3 || p.Args[1] != "a b" || p.Args[2] != "" {
					t.Errorf("Args %q", p.Args)
				}
				if p.Path != "/nonexistent/bin/x" || !p.ExeDeleted {
					t.Errorf("Path %q deleted %v", p.Path, p.ExeDeleted)
				}
				if p.Env["K"] != "v=w" || p.Env["E"] != "" {
					t.Errorf("Env %q", p.Env)
				}
				c := p.Creds
				if c.UID != 1 || c.EUID != 2 || c.SUID != 3 || c.FSUID != 4 || c.FSGID != 8 || len(c.Groups) != 2 || !c.NoNewPrivs || c.Seccomp != 2 {
					t.Errorf("creds %+v", c)
				}
				if p.UID != 2 || c.CapEffective.String() != "CAP_NET_RAW" {
					t.Errorf("UID %d caps %s", p.UID, c.CapEffective)
				}
			}},
		{"stat without parentheses", map[string]string{"stat": "42 x S 1", "status": goodStatus}, ErrMalformed, nil},
		{"stat cut short", map[string]string{"stat": "42 (x) S 1 42 42", "status": goodStatus}, ErrMalformed, nil},
		{"stat with a bad number", map[string]string{"stat": "42 (x) S 1 42 42 0 -1 zz 100 0 0 0 1 2 0 0 20 0 1 0 12345 1 1", "status": goodStatus}, ErrMalformed, nil},
		{"empty stat", map[string]string{"stat": "", "status": goodStatus}, ErrMalformed, nil},
		{"status without Uid" + lazyStatus, map[string]string{"stat": stat("x"), "status": "Name:\tx\nGid:\t1 1 1 1\nCapEff:\t0\n"}, ErrMalformed, nil},
		{"status with bad caps" + lazyStatus, map[string]string{"stat": stat("x"), "status": "Uid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\nCapEff:\tnothex\n"}, ErrMalformed, nil},
		{"vanished before status" + lazyStatus, map[string]string{"stat": stat("x")}, ErrGone, nil},
		{"zombie", map[string]string{"stat": "42 (z) Z 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1 1", "status": goodStatus}, nil,
			func(t *testing.T, p *Process) {
				if !p.Zombie || p.Path != "" || p.Args != nil {
					t.Errorf("zombie: %+v", p)
				}
			}},
		{"kernel thread", map[string]string{"stat": "42 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0", "status": goodStatus}, nil,
			func(t *testing.T, p *Process) {
				if !p.KernelThread || p.Path != KernelConnection {
					t.Errorf("kernel thread: %+v", p)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			fixture(t, root, "42", tc.files)
			if err := os.Symlink("/nonexistent/bin/x (deleted)", filepath.Join(root, "42", "exe")); err != nil {
				t.Fatal(err)
			}
			withProcRoot(t, root)
			p := NewProcessEmpty(42, "")
			err := p.GetDetails()
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("GetDetails: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("GetDetails: %v, want %v", err, tc.wantErr)
			case tc.wantErr != nil && strings.HasSuffix(tc.name, lazyStatus):
				// FindProcess leaves the status file for later: what it
				// reads is good, the credentials are unknown.
				q := FindProcess(42, false)
				if q == nil {
					t.Fatal("FindProcess: nil")
				}
				if c, ok := q.Credentials(); ok {
					t.Errorf("Credentials of a bad status file: %+v, ok", c)
				}
				return
			case tc.wantErr != nil:
				if FindProcess(42, false) != nil {
					t.Error("FindProcess returned a process for bad input")
				}
				return
			}
			if tc.check != nil {
				tc.check(t, p)
			}
			// FindProcess reads the same, the credentials on first use.
			q := FindProcess(42, false)
			if q == nil {
				t.Fatal("FindProcess: nil")
			}
			c, ok := q.Credentials()
			if q.Path != p.Path || q.ExeDeleted != p.ExeDeleted || !reflect.DeepEqual(q.Args, p.Args) ||
				!reflect.DeepEqual(q.Env, p.Env) || !ok || !reflect.DeepEqual(c, p.Creds) {
				t.Errorf("FindProcess %+v (creds %+v %v), GetDetails %+v", q, c, ok, p)
			}
		})
	}
}
