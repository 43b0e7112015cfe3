package audit

import (
	"slices"
	"strings"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"

	"github.com/proctrack/proctrack/procmon/process"
)

// TestSetupUndone does what another root process can do to a running
// source: delete its rules, then disable audit. Each time the source must
// notice (a fault in Stats and Status, a loss reported, a log record), put
// its setup back, and report execs again. Before, it went blind without a
// word: no exec events, Status running, nothing counted.
func TestSetupUndone(t *testing.T) {
	c, _ := guardAudit(t)
	tru := truePath(t)
	sink := &recSink{}
	// A long interval: the CONFIG_CHANGE records of the change must bring
	// the check forward.
	src := startSource(t, Config{CheckInterval: time.Minute}, sink)

	ours := func(owner string) int {
		n := 0
		for _, w := range readState(t, c).rules {
			if slices.Contains(ruleKeys(w), owner) {
				n++
			}
		}
		return n
	}
	execSeen := func(what string) {
		t.Helper()
		pid := run(t, tru)
		sink.wait(t, 5*time.Second, "exec of /bin/true "+what, func(ev *process.Event) bool {
			return ev.Kind == process.EventExec && ev.PID == pid
		})
	}
	// waitFault waits for a fault that says want, after the first n.
	waitFault := func(s *Source, n uint64, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for (s.Stats().Faults <= n || !strings.Contains(s.LastFault(), want)) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		st := s.Status()
		if s.Stats().Faults <= n || st.Faults != s.Stats().Faults || !strings.Contains(st.LastFault, want) || st.LastFaultAt.IsZero() {
			t.Fatalf("no fault saying %q: stats %+v, status faults %d last %q", want, s.Stats(), st.Faults, st.LastFault)
		}
	}
	execSeen("at start")

	// auditctl -D, as far as this source's rules go (other proctrack
	// instances may run on the machine).
	for _, w := range readState(t, c).rules {
		if slices.Contains(ruleKeys(w), src.owner) {
			if err := c.DeleteRule(w); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFault(src, 0, "rules deleted")
	// The check may have run while the rules were being deleted: the
	// next one puts back the rest.
	for deadline := time.Now().Add(5 * time.Second); ours(src.owner) != len(src.rules) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ours(src.owner); n != len(src.rules) {
		t.Errorf("%d of %d rules back", n, len(src.rules))
	}
	if !strings.Contains(src.LastFault(), "rules added again") {
		t.Errorf("last fault %q does not say the rules were added again", src.LastFault())
	}
	execSeen("after the rules were deleted")
	faults := src.Stats().Faults

	// auditctl -e 0.
	if err := c.SetEnabled(false, libaudit.WaitForReply); err != nil {
		t.Fatal(err)
	}
	waitFault(src, faults, "audit disabled")
	if st, err := c.GetStatus(); err != nil || st.Enabled == 0 {
		t.Errorf("audit not enabled again: %+v %v", st, err)
	}
	execSeen("after audit was disabled")

	sink.mu.Lock()
	losses := slices.Clone(sink.losses)
	sink.mu.Unlock()
	if !slices.ContainsFunc(losses, func(l string) bool { return strings.Contains(l, "rules deleted") }) ||
		!slices.ContainsFunc(losses, func(l string) bool { return strings.Contains(l, "audit disabled") }) {
		t.Errorf("the faults were not reported as losses: %q", losses)
	}
	if src.Err() != nil {
		t.Errorf("Err after repaired faults: %v", src.Err())
	}
	select {
	case <-src.Done():
		t.Error("the source stopped")
	default:
	}
}
