package rules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/proctrack/proctrack/internal/cfgtext"
)

// Sentinel errors, matched with errors.Is on the errors of Compile, NewSet
// and Defs.Validate.
var (
	// ErrSyntax is a rule that does not follow the grammar.
	ErrSyntax = errors.New("syntax error")
	// ErrAttribute is an attribute the hook does not have, or a value of
	// the wrong type for it (a string for uid, an unknown capability).
	ErrAttribute = errors.New("invalid attribute or value")
	// ErrLimit is a rule or rule set over one of the documented limits.
	ErrLimit = errors.New("limit exceeded")
	// ErrUnknownHook is a hook name not in Hooks.
	ErrUnknownHook = errors.New("unknown hook")
	// ErrDefs is an invalid list or macro definition.
	ErrDefs = errors.New("invalid list or macro")
	// ErrDuplicate is a rule with the name of another rule of its hook.
	ErrDuplicate = errors.New("duplicate rule name")
)

// quote quotes a name or value for an error: at most an excerpt of a long
// one, with its length.
func quote(s string) string { return cfgtext.Quote(s) }

// Pos is a position in a text: 1-based line and column (columns count
// bytes). The zero Pos means unknown.
type Pos struct {
	Line, Column int
}

// Add returns p, a position inside a text, as a position in an enclosing
// text where that text starts at base (for a rule read from a YAML file,
// base is where the rule's scalar starts). A zero base returns p.
func (p Pos) Add(base Pos) Pos {
	if base.Line == 0 {
		return p
	}
	if p.Line <= 1 {
		return Pos{Line: base.Line, Column: base.Column + p.Column - 1}
	}
	return Pos{Line: base.Line + p.Line - 1, Column: p.Column}
}

// Error is an error in a rule: which rule, which hook, where and what was
// expected. Its message reads
//
//	rule "UidTestRule" (setuid), line 1, column 14: expected a value after "==", found "AND"
//
// Err is one of the sentinel errors (ErrSyntax, ErrAttribute, ErrLimit,
// ErrDefs, ErrDuplicate, ErrUnknownHook), which Unwrap returns. Names and
// values longer than 64 bytes are quoted as an excerpt followed by "..."
// and their length.
type Error struct {
	Rule, Hook string
	// Field is "event" or "scope": which expression of the rule.
	Field string
	// Pos is where the error is: in the rule's text, or in the enclosing
	// file when the rule was compiled with a base position (Spec.EventPos,
	// Spec.ScopePos). Zero when the error is about the whole rule.
	Pos Pos
	// Macro names the macro the offending token came from, if any.
	Macro string
	Msg   string
	Err   error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule %s (%s", quote(e.Rule), e.Hook)
	if e.Field == "scope" {
		b.WriteString(" scope")
	}
	b.WriteString(")")
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ", line %d, column %d", e.Pos.Line, e.Pos.Column)
	}
	if e.Macro != "" {
		fmt.Fprintf(&b, " (in %s)", e.Macro)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }
