package procmon

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/internal/vmtest"
	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
)

// sandboxYAML denies setuid(1000) (a deny-list) and execs from /tmp (an
// allow-list of every other path); deniedUID picks the uid the setuid rule
// names.
func sandboxYAML(deniedUID string) string {
	return `method: ebpf
setuid:
  enabled: true
  sandbox: {enabled: true, deny_list: true}
  rules:
    - rule: NoSetuid
      event: uid == ` + deniedUID + `
bprm_check:
  enabled: true
  sandbox:
    enabled: true
  rules:
    - rule: NotFromTmp
      event: NOT path_prefix == "/tmp"
`
}

// TestVMSandbox starts a monitor from a YAML configuration with sandbox
// mode, in the test VMs (it skips elsewhere): where the LSM tier runs
// (6.12), a root child's setuid(1000) fails with EPERM under the deny-list
// rule and succeeds under one naming another uid, an exec from /tmp fails
// under the allow-list, and each denial is reported with its verdict and
// rule; where it does not (6.1), Start fails and says why.
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./procmon -run '^TestVM'
func TestVMSandbox(t *testing.T) {
	vmtest.RequireVM(t, "./procmon")
	start := func(t *testing.T, yaml string) (*Monitor, error) {
		fc, err := ParseConfig([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(fc)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(t.Context()); err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = m.Close() })
		return m, nil
	}
	if r := methodebpf.ProbeTier(); r.Tier != methodebpf.TierLSM {
		_, err := start(t, sandboxYAML("1000"))
		if err == nil || !errors.Is(err, ErrSandbox) || !strings.Contains(err.Error(), "LSM tier") {
			t.Fatalf("sandbox mode on the %s tier: %v", r.Tier, err)
		}
		t.Logf("refused as it should: %v", err)
		return
	}

	m, err := start(t, sandboxYAML("1000"))
	if err != nil {
		t.Fatal(err)
	}
	asUID := func(uid uint32) *exec.Cmd {
		cmd := exec.Command("sleep", "0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: 0}}
		return cmd
	}
	if err := asUID(1000).Run(); !errors.Is(err, syscall.EPERM) {
		t.Errorf("child setuid(1000) under the deny-list: %v, want EPERM", err)
	}
	if err := asUID(1001).Run(); err != nil {
		t.Errorf("child setuid(1001), which no rule names: %v", err)
	}
	tmp := t.TempDir()
	if !strings.HasPrefix(tmp, "/tmp/") {
		t.Fatalf("temporary directory %s is not under /tmp", tmp)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(tmp, "sleep")
	copyFile(t, sleep, copied)
	if err := exec.Command(copied, "0").Run(); !errors.Is(err, syscall.EPERM) {
		t.Errorf("exec from /tmp under the allow-list: %v, want EPERM", err)
	}
	var uidDenied, execDenied bool
	deadline := time.After(5 * time.Second)
	for !uidDenied || !execDenied {
		select {
		case ev := <-m.Events():
			if ev.Verdict != VerdictDenied {
				continue
			}
			switch {
			case ev.Kind == EventUID && ev.Creds != nil && ev.Creds.New.UID == 1000:
				uidDenied = slices.Equal(ev.Matched, []string{"NoSetuid"})
			case ev.Kind == EventExec && ev.Bprm != nil && ev.Bprm.Path == copied:
				execDenied = slices.Equal(ev.Matched, []string{"NotFromTmp"})
			}
		case <-deadline:
			t.Fatalf("denials reported: setuid %v, exec %v", uidDenied, execDenied)
		}
	}
	if st := m.Status(); st.Running != MethodEbpf {
		t.Errorf("status %+v", st)
	}

	// A setuid no rule names, without an exec after it and after the
	// detail refresh that follows the exec: not delivered, but the cache
	// has the new uid (the kernel sent it CacheOnly).
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PROCTRACK_SETUID_CHILD=1001")
	child := proctest.Start(t, cmd)
	time.Sleep(5 * DefaultDetailDelay) // the refresh has read the child as root
	if _, err := io.WriteString(child.Stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	child.WaitLine(t, "ok")
	pid := child.PID
	var uid uint32
	for end := time.Now().Add(5 * time.Second); uid != 1001 && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if item, ok := m.Cache().Peek(pid); ok {
			uid = item.Proc.Creds.UID
		}
	}
	if uid != 1001 {
		t.Errorf("the cache has uid %d for the child that set 1001 (a setuid no rule matched)", uid)
	}
	for drained := false; !drained; {
		select {
		case ev := <-m.Events():
			if ev.PID == pid && ev.Kind == EventUID {
				t.Errorf("the setuid no rule matched was delivered: %+v", ev)
			}
		default:
			drained = true
		}
	}
}
