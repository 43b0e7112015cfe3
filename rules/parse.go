package rules

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/proctrack/proctrack/procmon/process"
)

// Limits. A rule, list or rule set over one of them is refused with an error
// matching ErrLimit.
const (
	// MaxRuleBytes is the longest event or scope text (and macro): 64 KiB,
	// room for a list of thousands of values written inline.
	MaxRuleBytes = 64 << 10
	// MaxOps is the most operations in one rule (event and scope
	// together, after macro expansion): each comparison (==, !=, in) and
	// each AND, OR and NOT counts one.
	MaxOps = 64
	// MaxValues is the most values after one "in" (a list counts its
	// elements): 65536. Long lists cost no more per event than short ones
	// (they are looked up in maps, here and in the kernel's tables); the
	// limit only bounds memory.
	MaxValues = 1 << 16
	// MaxDepth is the deepest nesting of parentheses and NOTs (macros
	// count the parentheses they expand to).
	MaxDepth = 32
	// MaxMacroDepth is the deepest nesting of macros inside macros.
	MaxMacroDepth = 8
	// MaxRulesPerHook is the most rules one hook may have in a Set.
	MaxRulesPerHook = 64
)

// AnyCaps is the capability placeholder that matches any non-empty set.
const AnyCaps = "ANY_CAPS"

// Defs are the lists and macros rules may name. A list is a named list of
// values used after "in" (`path in shells`); its elements are strings, read
// by the attribute they are compared with (a number for uid, a capability
// name for ecaps). A macro is a named expression, used where a comparison
// may stand (`is_root AND NOT trusted`); it expands as if written in
// parentheses. Both expand only as whole identifiers: never inside a string
// literal, never as part of a longer name.
type Defs struct {
	Lists  map[string][]string
	Macros map[string]string
}

// Validate checks the names, sizes and syntax of the definitions (the
// tokens of each macro; whether a macro fits a rule is checked where it is
// used). It returns an error matching ErrDefs or ErrLimit.
func (d *Defs) Validate() error {
	if d == nil {
		return nil
	}
	for _, name := range sortedKeys(d.Lists) {
		if err := checkName("list", name); err != nil {
			return err
		}
		if _, dup := d.Macros[name]; dup {
			return fmt.Errorf("%w: %s is both a list and a macro", ErrDefs, quote(name))
		}
		if n := len(d.Lists[name]); n > MaxValues {
			return fmt.Errorf("%w: list %s has %d values; at most %d (MaxValues)", ErrLimit, quote(name), n, MaxValues)
		}
		if len(d.Lists[name]) == 0 {
			return fmt.Errorf("%w: list %s is empty (Bombini requires items; write [] after \"in\" for an empty list)", ErrDefs, quote(name))
		}
	}
	for _, name := range sortedKeys(d.Macros) {
		if err := checkName("macro", name); err != nil {
			return err
		}
		text := d.Macros[name]
		if len(text) > MaxRuleBytes {
			return fmt.Errorf("%w: macro %s is %d bytes; at most %d (MaxRuleBytes)", ErrLimit, quote(name), len(text), MaxRuleBytes)
		}
		if strings.TrimSpace(text) == "" {
			return fmt.Errorf("%w: macro %s is empty", ErrDefs, quote(name))
		}
		if _, lerr := lex(text); lerr != nil {
			return fmt.Errorf("%w: macro %s, line %d, column %d: %s", ErrDefs, quote(name), lerr.pos.Line, lerr.pos.Column, lerr.msg)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Spec is the source of one rule.
type Spec struct {
	// Hook is the hook the rule filters (a name of Hooks, or an alias).
	Hook string
	// Name is the rule's name, reported with its matches.
	Name string
	// Event is the event expression over the hook's attributes and the
	// scope attributes; "ANY" and "" match every event (a configuration
	// file must write ANY: procmon refuses a rule without event).
	Event string
	// Scope is the scope expression over the scope attributes; "" and
	// "ANY" match every process.
	Scope string
	// EventPos and ScopePos are where Event and Scope start in the file
	// they were read from; error positions are then file positions. Zero
	// means positions relative to the text itself.
	EventPos, ScopePos Pos
}

// Rule is a compiled rule. It is immutable and safe for concurrent use.
type Rule struct {
	spec  Spec
	event *node
	scope *node
	ops   int
}

// Name returns the rule's name.
func (r *Rule) Name() string { return r.spec.Name }

// Hook returns the rule's hook (the canonical name, "capset" for "setcaps").
func (r *Rule) Hook() string { return r.spec.Hook }

// Event returns the event expression as written.
func (r *Rule) Event() string { return r.spec.Event }

// Scope returns the scope expression as written.
func (r *Rule) Scope() string { return r.spec.Scope }

// Ops returns the number of operations the rule has (see MaxOps).
func (r *Rule) Ops() int { return r.ops }

// String returns the rule's hook, name and expressions.
func (r *Rule) String() string {
	s := fmt.Sprintf("%s/%s: %s", r.spec.Hook, r.spec.Name, r.spec.Event)
	if r.spec.Scope != "" {
		s += " [scope: " + r.spec.Scope + "]"
	}
	return s
}

// Match reports whether an event's attributes satisfy the rule: both its
// scope and its event expression.
func (r *Rule) Match(in *Input) bool {
	return (r.scope == nil || r.scope.eval(in)) && (r.event == nil || r.event.eval(in))
}

// Compile compiles the event expression text of rule name for hook, with
// the lists and macros of defs (nil for none).
func Compile(hook, name, text string, defs *Defs) (*Rule, error) {
	return CompileSpec(Spec{Hook: hook, Name: name, Event: text}, defs)
}

// CompileSpec compiles a rule. Errors are *Error values naming the rule,
// the hook, the line and column and what was expected; they match
// ErrSyntax, ErrAttribute, ErrLimit, ErrDefs or ErrUnknownHook.
func CompileSpec(s Spec, defs *Defs) (*Rule, error) {
	hook, ok := CanonicalHook(s.Hook)
	if !ok {
		return nil, &Error{Rule: s.Name, Hook: s.Hook, Err: ErrUnknownHook,
			Msg: fmt.Sprintf("expected a hook name (one of %s), found %s", strings.Join(Hooks, ", "), quote(s.Hook))}
	}
	s.Hook = hook
	r := &Rule{spec: s}
	var err error
	if r.event, err = r.compile("event", s.Event, s.EventPos, false, defs); err != nil {
		return nil, err
	}
	if r.scope, err = r.compile("scope", s.Scope, s.ScopePos, true, defs); err != nil {
		return nil, err
	}
	return r, nil
}

// compile parses one expression of the rule.
func (r *Rule) compile(field, text string, base Pos, scopeOnly bool, defs *Defs) (*node, error) {
	p := &parser{rule: r, field: field, base: base, allowed: allowed(r.spec.Hook, scopeOnly)}
	if len(text) > MaxRuleBytes {
		return nil, p.errf(ErrLimit, Pos{}, "", "the %s expression is %d bytes; at most %d (MaxRuleBytes)", field, len(text), MaxRuleBytes)
	}
	toks, lerr := lex(text)
	if lerr != nil {
		return nil, p.errf(ErrSyntax, lerr.pos, "", "%s", lerr.msg)
	}
	if len(toks) == 1 || len(toks) == 2 && toks[0].kind == tokAny {
		return nil, nil // empty, or ANY: matches everything
	}
	toks, err := p.expand(toks, defs, nil)
	if err != nil {
		return nil, err
	}
	p.toks = toks
	n, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errAt(ErrSyntax, t, "expected AND, OR or the end of the rule, found %s", t.describe())
	}
	return n, nil
}

// parser is a recursive-descent parser over expanded tokens.
type parser struct {
	rule    *Rule
	field   string
	base    Pos
	allowed []attrID
	toks    []token
	i       int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// errf returns an *Error at pos of the text being parsed.
func (p *parser) errf(kind error, pos Pos, macro, format string, args ...any) error {
	e := &Error{Rule: p.rule.spec.Name, Hook: p.rule.spec.Hook, Field: p.field, Macro: macro,
		Msg: fmt.Sprintf(format, args...), Err: kind}
	if pos.Line > 0 {
		e.Pos = pos.Add(p.base)
	}
	return e
}

// errAt returns an *Error at token t.
func (p *parser) errAt(kind error, t token, format string, args ...any) error {
	return p.errf(kind, t.pos, t.from, format, args...)
}

// expand replaces list and macro names by what they stand for. stack holds
// the macros being expanded (for cycles and depth).
func (p *parser) expand(toks []token, defs *Defs, stack []string) ([]token, error) {
	if defs == nil {
		return toks, nil
	}
	out := make([]token, 0, len(toks))
	for _, t := range toks {
		if t.kind != tokIdent {
			out = append(out, t)
			continue
		}
		if list, ok := defs.Lists[t.text]; ok {
			if err := checkName("list", t.text); err != nil {
				return nil, p.errAt(ErrDefs, t, "%v", err)
			}
			lt := token{kind: tokList, text: t.text, list: list, pos: t.pos, from: t.from}
			out = append(out, lt)
			continue
		}
		text, ok := defs.Macros[t.text]
		if !ok {
			out = append(out, t)
			continue
		}
		if err := checkName("macro", t.text); err != nil {
			return nil, p.errAt(ErrDefs, t, "%v", err)
		}
		for _, m := range stack {
			if m == t.text {
				return nil, p.errAt(ErrDefs, t, "macro %s uses itself (through %s)", quote(t.text), strings.Join(stack, " -> "))
			}
		}
		if len(stack) >= MaxMacroDepth {
			return nil, p.errAt(ErrLimit, t, "macros nest deeper than %d (MaxMacroDepth)", MaxMacroDepth)
		}
		if len(text) > MaxRuleBytes {
			return nil, p.errAt(ErrLimit, t, "macro %s is %d bytes; at most %d (MaxRuleBytes)", quote(t.text), len(text), MaxRuleBytes)
		}
		mt, lerr := lex(text)
		if lerr != nil {
			return nil, p.errAt(ErrSyntax, t, "in macro %s, line %d, column %d: %s", quote(t.text), lerr.pos.Line, lerr.pos.Column, lerr.msg)
		}
		from := t.from
		if from == "" {
			from = "macro " + quote(t.text)
		}
		mt = mt[:len(mt)-1] // drop EOF
		for k := range mt {
			mt[k].pos, mt[k].from = t.pos, from
		}
		mt, err := p.expand(mt, defs, append(stack, t.text))
		if err != nil {
			return nil, err
		}
		out = append(out, token{kind: tokLParen, text: "(", pos: t.pos, from: from})
		out = append(out, mt...)
		out = append(out, token{kind: tokRParen, text: ")", pos: t.pos, from: from, macroEnd: true})
		if len(out) > 4*MaxRuleBytes {
			return nil, p.errAt(ErrLimit, t, "macros expand to more than %d tokens", 4*MaxRuleBytes)
		}
	}
	return out, nil
}

// countOp counts one operation against MaxOps.
func (p *parser) countOp(t token) error {
	p.rule.ops++
	if p.rule.ops > MaxOps {
		return p.errAt(ErrLimit, t, "the rule has more than %d operations (MaxOps)", MaxOps)
	}
	return nil
}

// parseOr: and { OR and }
func (p *parser) parseOr(depth int) (*node, error) {
	l, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tokOr {
		t := p.next()
		if err := p.countOp(t); err != nil {
			return nil, err
		}
		r, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		l = &node{op: opOr, l: l, r: r}
	}
	return l, nil
}

// parseAnd: not { AND not }
func (p *parser) parseAnd(depth int) (*node, error) {
	l, err := p.parseNot(depth)
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tokAnd {
		t := p.next()
		if err := p.countOp(t); err != nil {
			return nil, err
		}
		r, err := p.parseNot(depth)
		if err != nil {
			return nil, err
		}
		l = &node{op: opAnd, l: l, r: r}
	}
	return l, nil
}

// parseNot: NOT not | primary
func (p *parser) parseNot(depth int) (*node, error) {
	t := p.peek()
	if depth >= MaxDepth {
		return nil, p.errAt(ErrLimit, t, "parentheses and NOTs nest deeper than %d (MaxDepth)", MaxDepth)
	}
	if t.kind != tokNot {
		return p.parsePrimary(depth)
	}
	p.next()
	if err := p.countOp(t); err != nil {
		return nil, err
	}
	x, err := p.parseNot(depth + 1)
	if err != nil {
		return nil, err
	}
	return &node{op: opNot, l: x}, nil
}

// parsePrimary: "(" or ")" | attribute ("==" | "!=") value | attribute "in" values
func (p *parser) parsePrimary(depth int) (*node, error) {
	t := p.next()
	switch t.kind {
	case tokLParen:
		x, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, p.errAt(ErrSyntax, c, "expected \")\" to close the \"(\" at line %d, column %d, found %s",
				t.pos.Add(p.base).Line, t.pos.Add(p.base).Column, c.describe())
		}
		return x, nil
	case tokIdent:
		return p.parseComparison(t)
	case tokList:
		return nil, p.errAt(ErrSyntax, t, "expected an attribute, NOT or \"(\", found list %s (a list goes after \"in\")", quote(t.text))
	case tokAny:
		return nil, p.errAt(ErrSyntax, t, "expected an attribute, NOT or \"(\", found %q (ANY stands alone: the whole expression, matching everything)", t.text)
	}
	return nil, p.errAt(ErrSyntax, t, "expected an attribute, NOT or \"(\", found %s", t.describe())
}

// parseComparison parses what follows attribute token at.
func (p *parser) parseComparison(at token) (*node, error) {
	id, arg, ok := attrByNameN(at.text)
	if !ok {
		return nil, p.errAt(ErrAttribute, at, "expected an attribute (%s) or a macro, found %s", names(p.allowed), quote(at.text))
	}
	if !containsAttr(p.allowed, id) {
		if p.field == "scope" {
			return nil, p.errAt(ErrAttribute, at, "attribute %s is not a scope attribute (%s)", quote(at.text), names(p.allowed))
		}
		return nil, p.errAt(ErrAttribute, at, "hook %s has no attribute %s (it has %s)", p.rule.spec.Hook, quote(at.text), names(p.allowed))
	}
	if err := p.countOp(at); err != nil {
		return nil, err
	}
	n := &node{op: opCmp, attr: id, arg: arg}
	defer n.index()
	op := p.next()
	switch op.kind {
	case tokEq, tokNe:
		n.neg = op.kind == tokNe
		v := p.next()
		switch v.kind {
		case tokInt, tokString:
		default:
			return nil, p.errAt(ErrSyntax, v, "expected a value after %q, found %s", op.text, v.describe())
		}
		if err := p.addValue(n, v, ""); err != nil {
			return nil, err
		}
	case tokIn:
		v := p.next()
		switch v.kind {
		case tokList:
			for _, s := range v.list {
				if err := p.addValue(n, v, s); err != nil {
					return nil, err
				}
			}
		case tokLBrack, tokLParen:
			// [values] or, as Bombini writes it, (values); an element
			// may be a list name.
			closer, closeText := tokRBrack, "]"
			if v.kind == tokLParen {
				closer, closeText = tokRParen, ")"
			}
			if p.peek().kind == closer {
				// An empty list, as Bombini's grammar allows: the
				// comparison holds for no value.
				p.next()
				break
			}
			for {
				e := p.next()
				switch e.kind {
				case tokInt, tokString:
					if err := p.addValue(n, e, ""); err != nil {
						return nil, err
					}
				case tokList:
					for _, s := range e.list {
						if err := p.addValue(n, e, s); err != nil {
							return nil, err
						}
					}
				default:
					return nil, p.errAt(ErrSyntax, e, "expected a value or a list name in the list, found %s", e.describe())
				}
				sep := p.next()
				if sep.kind == closer {
					break
				}
				if sep.kind != tokComma {
					return nil, p.errAt(ErrSyntax, sep, "expected \",\" or %q in the list, found %s", closeText, sep.describe())
				}
			}
		default:
			return nil, p.errAt(ErrSyntax, v, "expected \"[\", \"(\" or a list name after \"in\", found %s", v.describe())
		}
		if n.count() > MaxValues {
			return nil, p.errAt(ErrLimit, op, "more than %d values after \"in\" (MaxValues)", MaxValues)
		}
	default:
		return nil, p.errAt(ErrSyntax, op, "expected \"==\", \"!=\" or \"in\" after %s, found %s", quote(at.text), op.describe())
	}
	return n, nil
}

func containsAttr(ids []attrID, id attrID) bool {
	for _, a := range ids {
		if a == id {
			return true
		}
	}
	return false
}

// addValue adds to n the value of token v (or, when v is a list, the list
// element elem), checked against the attribute's type.
func (p *parser) addValue(n *node, v token, elem string) error {
	a := attrs[n.attr]
	fromList := v.kind == tokList
	text := v.text
	if fromList {
		text = elem
	}
	where := ""
	if fromList {
		where = " in list " + quote(v.text)
	}
	if n.count() >= MaxValues {
		return p.errAt(ErrLimit, v, "more than %d values after \"in\" (MaxValues)", MaxValues)
	}
	switch a.typ {
	case typeInt:
		var num uint64
		switch {
		case fromList:
			u, err := strconv.ParseUint(strings.TrimSpace(text), 0, 64)
			if err != nil || strings.Contains(text, "_") {
				return p.errAt(ErrAttribute, v, "expected an integer for %s%s, found %s", a.name, where, quote(text))
			}
			num = u
		case v.kind == tokInt:
			num = v.num
		default:
			return p.errAt(ErrAttribute, v, "expected an integer for %s, found %s", a.name, v.describe())
		}
		if num > math.MaxUint32 {
			return p.errAt(ErrAttribute, v, "expected an integer from 0 to 4294967295 for %s%s, found %s", a.name, where, text)
		}
		n.ints = append(n.ints, uint32(num))
	case typeCaps:
		if !fromList && v.kind != tokString {
			return p.errAt(ErrAttribute, v, "expected a capability name in quotes (\"CAP_SYS_ADMIN\" or %q) for %s, found %s", AnyCaps, a.name, v.describe())
		}
		// One name, or several joined by "|" as Bombini reads them
		// ("CAP_SYS_ADMIN | CAP_NET_RAW"): the set holds one of them.
		for _, name := range strings.Split(text, "|") {
			name = strings.TrimSpace(name)
			if name == AnyCaps {
				n.anyCaps = true
				continue
			}
			c, ok := process.CapByName(name)
			if !ok {
				return p.errAt(ErrAttribute, v, "expected a capability name (capabilities(7)), several joined by \"|\", or %q for %s%s, found %s", AnyCaps, a.name, where, quote(text))
			}
			n.caps |= process.CapSet(1) << uint(c)
			n.ncaps++
		}
	case typeString, typePrefix, typeArg:
		if !fromList && v.kind != tokString {
			return p.errAt(ErrAttribute, v, "expected a string in quotes for %s, found %s", attrLabel(n.attr), v.describe())
		}
		if a.typ == typePrefix {
			if !strings.HasPrefix(text, "/") {
				return p.errAt(ErrAttribute, v, "expected an absolute path (starting with \"/\") for %s%s, found %s", a.name, where, quote(text))
			}
			text = strings.TrimRight(text, "/")
		}
		n.strs = append(n.strs, text)
	}
	return nil
}
