package rules

import (
	"fmt"

	"github.com/proctrack/proctrack/procmon/process"
)

// Set is a set of compiled rules, by hook. It is immutable and safe for
// concurrent use; the zero Set and a nil *Set have no rules.
type Set struct {
	byHook map[string][]*Rule
	n      int
}

// NewSet returns a Set of rules. It fails (with an error matching ErrLimit)
// when a hook has more than MaxRulesPerHook rules, and (with an *Error
// matching ErrDuplicate) when two rules of a hook share a name.
func NewSet(rules ...*Rule) (*Set, error) {
	s := &Set{byHook: make(map[string][]*Rule)}
	for _, r := range rules {
		for _, o := range s.byHook[r.Hook()] {
			if o.Name() == r.Name() {
				return nil, &Error{Rule: r.Name(), Hook: r.Hook(), Err: ErrDuplicate,
					Msg: "duplicate rule name: another rule of the hook has it"}
			}
		}
		s.byHook[r.Hook()] = append(s.byHook[r.Hook()], r)
		if n := len(s.byHook[r.Hook()]); n > MaxRulesPerHook {
			return nil, fmt.Errorf("%w: hook %s has more than %d rules (MaxRulesPerHook)", ErrLimit, r.Hook(), MaxRulesPerHook)
		}
		s.n++
	}
	return s, nil
}

// Len returns the number of rules.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Rules returns the rules of a hook, in the order they were given.
func (s *Set) Rules(hook string) []*Rule {
	if s == nil {
		return nil
	}
	hook, _ = CanonicalHook(hook)
	return s.byHook[hook]
}

// Match returns the rules of hook that in matches, in order.
func (s *Set) Match(hook string, in *Input) []*Rule {
	var out []*Rule
	for _, r := range s.Rules(hook) {
		if r.Match(in) {
			out = append(out, r)
		}
	}
	return out
}

// MatchEvent maps a monitor event to its hook (FromEvent) and returns the
// hook and the rules it matches.
func (s *Set) MatchEvent(ev *process.Event) (string, []*Rule) {
	hook, in, ok := FromEvent(ev)
	if !ok || s.Len() == 0 {
		return hook, nil
	}
	return hook, s.Match(hook, &in)
}
