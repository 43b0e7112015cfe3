package audit

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
)

// minCheckGap bounds how often CONFIG_CHANGE records bring a check forward
// (another process adding rules one by one would otherwise have every one
// checked).
const minCheckGap = 100 * time.Millisecond

// check makes sure the kernel still audits what the source set up, which
// any other process with CAP_AUDIT_CONTROL can undo (auditctl -D, -e 0):
// audit enabled, the source's rules present, and in unicast mode this
// process the audit pid. What it finds changed is a fault: logged, counted
// (Stats.Faults, Status), reported to the sink as a loss of unknown size
// (events were missed meanwhile; the monitor reconciles the cache), and
// repaired: audit enabled again, missing rules added again. It returns an
// error when the repair failed or the audit pid is another process's
// (records go there, and the kernel does not let a live daemon be
// replaced): the source cannot see, and stops. Called by the reader.
func (s *Source) check(st *stream) error {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	if s.ctl == nil || s.closing.Load() {
		return nil
	}
	ks, err := s.ctl.GetStatus()
	if err != nil {
		s.errs.Add(1)
		s.log.Debug("audit: check: status", "err", err)
		return nil
	}
	kernelRules, err := s.ctl.GetRules()
	if err != nil {
		s.errs.Add(1)
		s.log.Debug("audit: check: rules", "err", err)
		return nil
	}
	var found, done []string
	var failed error
	if !s.multicast && ks.PID != uint32(os.Getpid()) {
		found = append(found, fmt.Sprintf("the audit pid is %d, not this process", ks.PID))
		failed = fmt.Errorf("audit: the audit pid was taken by %d: records go there", ks.PID)
	}
	if ks.Enabled == 0 {
		found = append(found, "audit disabled")
		if err := s.ctl.SetEnabled(true, libaudit.WaitForReply); err != nil {
			failed = errors.Join(failed, fmt.Errorf("audit: enable again: %w", err))
		} else {
			s.changes.enabled = true // Close restores what Start found
			done = append(done, "enabled again")
		}
	}
	ours := 0
	for _, w := range kernelRules {
		if slices.Contains(ruleKeys(w), s.owner) {
			ours++
		}
	}
	if ours < len(s.rules) {
		found = append(found, fmt.Sprintf("%d of %d rules deleted", len(s.rules)-ours, len(s.rules)))
		added := 0
		for _, r := range s.rules {
			switch err := s.ctl.AddRule(r.wire); {
			case err == nil:
				added++
			case strings.Contains(err.Error(), "rule exists"): // libaudit hides EEXIST
			default:
				failed = errors.Join(failed, fmt.Errorf("audit: add rule %q again: %w", r.text, err))
			}
		}
		if added > 0 {
			done = append(done, fmt.Sprintf("%d rules added again", added))
		}
	}
	if len(found) == 0 {
		return nil
	}
	what := "audit setup changed by another process: " + strings.Join(found, ", ")
	outcome := strings.Join(done, ", ")
	if failed != nil {
		outcome = "not repaired: " + failed.Error()
	}
	s.faults.Add(1)
	s.statusMu.Lock()
	s.status.Faults++
	s.status.LastFault = what + "; " + outcome
	s.status.LastFaultAt = time.Now()
	s.statusMu.Unlock()
	s.log.Warn("audit: "+what, "repair", outcome)
	st.reportLost(0, what)
	return failed
}
