package floor

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

// TestMain lets the test binary answer proctest's proc-connector probe.
func TestMain(m *testing.M) {
	proctest.RunProbe()
	os.Exit(m.Run())
}

func TestStormWritesPids(t *testing.T) {
	bin := Build(t, "storm")
	prefix := filepath.Join(t.TempDir(), "pids")
	if rate := Storm(t, bin, 20, 2, prefix); rate <= 0 {
		t.Fatalf("rate %v", rate)
	}
	pids, err := Pids(prefix, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 20 {
		t.Fatalf("%d pids written, want 20", len(pids))
	}
	for _, p := range pids {
		if p <= 0 {
			t.Fatalf("pid %d: a fork failed", p)
		}
	}
}

func TestFields(t *testing.T) {
	f := Fields("RESULT storm=20000 named_right=18000 cpu=0.900")
	if f["storm"] != 20000 || f["named_right"] != 18000 || f["cpu"] != 0.9 {
		t.Fatalf("%v", f)
	}
}

// TestCnname: cnname names the execs of a small storm and prints its
// result when stopped.
func TestCnname(t *testing.T) {
	if !proctest.JoinsProcConnector(t, nil, nil) {
		t.Skip("this kernel does not let this process join the proc connector (it asks for CAP_NET_ADMIN here)")
	}
	storm, cnname := Build(t, "storm"), Build(t, "cnname")
	prefix := filepath.Join(t.TempDir(), "pids")
	l := StartListener(t, cnname, prefix, "2", "500")
	Storm(t, storm, 50, 2, prefix)
	time.Sleep(100 * time.Millisecond) // let the last events in
	r := l.Stop(t)
	if r["storm"] != 50 || r["exec_reported"] != 50 || r["cpu"] <= 0 {
		t.Fatalf("cnname: %v", r)
	}
	// An exec whose process has exited by the time cnname reads it shows an
	// empty cmdline, which cnname counts under right_path_wrong_args: only
	// a wrong path is an error, and some execs must be named right.
	if r["wrong_path"] != 0 || r["named_right"]+r["right_path_wrong_args"]+r["unnamed"] != 50 || r["named_right"] == 0 {
		t.Fatalf("cnname named execs wrongly: %v", r)
	}
}
