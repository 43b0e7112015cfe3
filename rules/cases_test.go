package rules_test

import (
	"testing"

	"github.com/proctrack/proctrack/internal/rulecases"
	"github.com/proctrack/proctrack/rules"
)

// TestCases runs the shared table of rule cases through Match and through
// the postfix form (Postfix, EvalPostfix), which the kernel's tables are
// compiled from.
func TestCases(t *testing.T) {
	for _, c := range rulecases.Cases {
		r, err := rules.Compile(c.Hook, "T", c.Rule, rulecases.Defs)
		if err != nil {
			t.Errorf("%s: %q: %v", c.Hook, c.Rule, err)
			continue
		}
		in := c.In
		if got := r.Match(&in); got != c.Want {
			t.Errorf("%s: %q on %v = %v, want %v", c.Hook, c.Rule, in.String(), got, c.Want)
		}
		scope, event := r.Postfix()
		if got := rules.EvalPostfix(scope, &in) && rules.EvalPostfix(event, &in); got != c.Want {
			t.Errorf("%s: %q postfix %v on %v = %v, want %v", c.Hook, c.Rule, event, in.String(), got, c.Want)
		}
		if d := rules.StackDepth(event); d < 1 || d > 64 {
			t.Errorf("%q: stack depth %d", c.Rule, d)
		}
	}
}
