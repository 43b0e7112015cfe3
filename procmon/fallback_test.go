package procmon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

// TestMain lets the test binary run a monitor in a child process with
// fewer privileges (PROCTRACK_MONITOR_CHILD set).
func TestMain(m *testing.M) {
	proctest.RunProbe()
	if os.Getenv("PROCTRACK_MONITOR_CHILD") != "" {
		os.Exit(monitorChild())
	}
	if uid := os.Getenv("PROCTRACK_SETUID_CHILD"); uid != "" {
		os.Exit(setuidChild(uid))
	}
	os.Exit(m.Run())
}

// setuidChild waits for a line on its standard input, then sets its real,
// effective and saved uid to uid without an exec, prints "ok", and lives
// until its standard input ends.
func setuidChild(uid string) int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		fmt.Println("error", err)
		return 1
	}
	id, err := strconv.Atoi(uid)
	if err == nil {
		err = syscall.Setresuid(id, id, id)
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ok")
	_, _ = io.Copy(io.Discard, in)
	return 0
}

// monitorChild starts a monitor, prints its Status as JSON, starts a
// process and prints "saw <path>" when the monitor reports its exec.
func monitorChild() int {
	m, err := New(Config{ProcInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := m.Start(context.Background()); err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer m.Close()
	b, _ := json.Marshal(m.Status())
	fmt.Println(string(b))
	cmd := exec.Command("/bin/sleep", "1")
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer cmd.Wait()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-m.Events():
			if ev.Kind == EventExec && ev.PID == cmd.Process.Pid {
				fmt.Println("saw", ev.Process.Path)
				return 0
			}
		case <-timeout:
			fmt.Println("error: no exec event for", cmd.Process.Pid)
			return 1
		}
	}
}

// TestFallbackWithoutPrivileges runs the monitor in children stripped of
// the capabilities each method needs: the monitor falls back, says why, and
// keeps reporting processes.
func TestFallbackWithoutPrivileges(t *testing.T) {
	proctest.RequireRoot(t, "drops capabilities from a child with setpriv")
	setpriv := proctest.RequireTool(t, "setpriv")
	unshare := proctest.RequireTool(t, "unshare")
	// Whether the proc connector takes a listener without CAP_NET_ADMIN is
	// the kernel's decision, which differs between machines: ask it.
	noCaps := MethodProc
	if proctest.JoinsProcConnector(t, []string{setpriv, "--inh-caps=-all", "--bounding-set=-all", "--"}, nil) {
		noCaps = MethodNetlink
	}
	const noBPF = "-bpf,-sys_admin,-perfmon"
	cases := []struct {
		name  string
		netns bool   // run in a new network namespace: the proc connector exists only in the initial one
		drop  string // capabilities removed from the bounding set
		want  string // the method that must run
		skips []string
	}{
		{"no eBPF capabilities", false, noBPF, MethodNetlink, []string{MethodEbpf}},
		{"no capabilities", false, "-all", noCaps, []string{MethodEbpf}},
		{"no eBPF capabilities, other network namespace", true, noBPF, MethodAudit, []string{MethodEbpf, MethodNetlink}},
		{"no eBPF nor audit capabilities, other network namespace", true, noBPF + ",-audit_control,-audit_read,-audit_write", MethodProc, []string{MethodEbpf, MethodNetlink, MethodAudit}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{setpriv, "--inh-caps=-all", "--bounding-set=" + tc.drop, "--", os.Args[0], "-test.run=^$"}
			if tc.netns {
				args = append([]string{unshare, "--net"}, args...)
			}
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "PROCTRACK_MONITOR_CHILD=1")
			out, err := cmd.Output()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if err != nil || len(lines) < 2 {
				t.Fatalf("child: %v\n%s", err, out)
			}
			var st Status
			if err := json.Unmarshal([]byte(lines[0]), &st); err != nil {
				t.Fatalf("status %q: %v", lines[0], err)
			}
			if st.Running != tc.want {
				t.Errorf("running %q, want %q: %+v", st.Running, tc.want, st.Methods)
			}
			for _, s := range st.Methods {
				if slices.Contains(tc.skips, s.Method) && (s.State != "skipped" || s.Reason == "") {
					t.Errorf("%s: %s %q, want skipped with a reason", s.Method, s.State, s.Reason)
				}
			}
			if !strings.HasPrefix(lines[len(lines)-1], "saw /") {
				t.Errorf("child did not report its process: %q", lines[len(lines)-1])
			}
			t.Log(lines[0])
		})
	}
}
