package procmon

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/methods/audit"
	"github.com/proctrack/proctrack/procmon/process"
)

// failingSource is a fakeSource that finds faults and can stop on its own
// (methods.Failer, methods.Faulter): what a kernel cannot be made to do on
// demand (an audit setup that cannot be restored).
type failingSource struct {
	fakeSource
	done   chan struct{}
	mu     sync.Mutex
	err    error
	fault  string
	faults uint64
}

func (f *failingSource) Done() <-chan struct{} { return f.done }
func (f *failingSource) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
func (f *failingSource) LastFault() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fault
}
func (f *failingSource) Stats() methods.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return methods.Stats{Faults: f.faults}
}

// fail stops the source on its own with err.
func (f *failingSource) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	close(f.done)
}

// TestSourceFaultAndFailure: a running method's faults show in Status and
// Stats, and when it stops on its own the monitor falls back to the method
// below it and says why. Before, a method that stopped left the monitor
// "running" it, blind.
func TestSourceFaultAndFailure(t *testing.T) {
	src := &failingSource{fakeSource: fakeSource{name: MethodAudit}, done: make(chan struct{})}
	withSource(t, MethodAudit, src)
	below := &fakeSource{name: MethodProc}
	withSource(t, MethodProc, below)
	m, _ := startMonitor(t, Config{Method: MethodAudit})

	src.mu.Lock()
	src.fault, src.faults = "audit setup changed by another process: audit disabled; enabled again", 1
	src.mu.Unlock()
	if st := m.Status(); st.Methods[2].State != "running" || st.Methods[2].Fault != src.LastFault() {
		t.Errorf("status %+v: want audit running with its fault", st.Methods)
	}
	if n := m.Stats().SourceFaults; n != 1 {
		t.Errorf("SourceFaults %d, want 1", n)
	}

	src.fail(errors.New("audit: the audit pid was taken by 4242"))
	waitFor(t, 5*time.Second, func() bool { return m.Method() == MethodProc })
	st := m.Status()
	if a := st.Methods[2]; a.State != "failed" || !strings.Contains(a.Reason, "taken by 4242") {
		t.Errorf("failed method's status %+v", a)
	}
	if p := st.Methods[3]; p.State != "running" || st.Running != MethodProc {
		t.Errorf("status after the fallback %+v", st)
	}
	if !src.closed {
		t.Error("the failed source was not closed")
	}
	if n := m.Stats().SourceFaults; n != 1 {
		t.Errorf("SourceFaults %d after the fallback, want 1 (kept)", n)
	}
}

// TestAuditRulesDeletedMonitor: with the audit method running, another root
// process deletes proctrack's rules: the monitor's Status and Stats show
// it, a warning is logged, and exec events come again.
func TestAuditRulesDeletedMonitor(t *testing.T) {
	proctest.RequireRoot(t, "kernel audit")
	tru := proctest.RequireTool(t, "true")
	var logs lockedBuffer
	m, c := startMonitor(t, Config{Method: MethodAudit, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if m.Method() != MethodAudit {
		t.Skipf("audit cannot run here: %+v", m.Status())
	}
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	rules, err := ctl.GetRules()
	if err != nil {
		t.Fatal(err)
	}
	// Only this process's rules: other proctrack instances may run.
	self, err := process.CurrentKey(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	owner := []byte(audit.RuleKey + "-owner=" + self.String() + ".")
	deleted := 0
	for _, w := range rules {
		if bytes.Contains(w, owner) {
			if err := ctl.DeleteRule(w); err == nil {
				deleted++
			}
		}
	}
	if deleted == 0 {
		t.Fatal("no proctrack rule to delete")
	}
	waitFor(t, 10*time.Second, func() bool { return m.Stats().SourceFaults > 0 })
	st := m.Status()
	if a := st.Methods[2]; a.State != "running" || !strings.Contains(a.Fault, "rules deleted") {
		t.Errorf("audit status %+v", a)
	}
	if m.Stats().LossReports == 0 {
		t.Error("no loss reported for the time without rules")
	}
	if !strings.Contains(logs.String(), "rules deleted") {
		t.Errorf("nothing logged: %s", logs.String())
	}
	// Execs are reported again.
	for deadline := time.Now().Add(10 * time.Second); ; {
		cmd := exec.Command(tru)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		seen := false
		for end := time.Now().Add(time.Second); time.Now().Before(end) && !seen; time.Sleep(10 * time.Millisecond) {
			seen = c.count(EventExec, pid) > 0
		}
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no exec event after the rules were deleted")
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
