package rules

import (
	"fmt"
	"slices"

	"github.com/proctrack/proctrack/procmon/process"
)

// OpKind is the kind of an Op.
type OpKind uint8

// Kinds of Op.
const (
	// OpTrue pushes true: it stands for an absent scope or event.
	OpTrue OpKind = iota + 1
	// OpMatch pushes whether the attribute equals one of the values (a
	// capability set: holds one of them), or, with Negate, none.
	OpMatch
	// OpAnd, OpOr pop two values and push their conjunction, disjunction.
	OpAnd
	OpOr
	// OpNot replaces the top value with its negation.
	OpNot
)

// Op is one step of an expression in postfix order (Rule.Postfix): the form
// the eBPF LSM tier compiles into its map tables. A comparison's values
// are in Ints (uid, euid, gid, egid), Strings (path, name and the scope's
// paths and names whole; the prefixes as written, compared by whole
// components as HasPathPrefix does; sched_process_exec's argN, "arg0" to
// "arg31", compared with each argument) or Caps and AnyCaps (ecaps, pcaps).
type Op struct {
	Kind    OpKind
	Attr    string // OpMatch: the attribute's name
	Negate  bool   // OpMatch: the comparison was !=
	Ints    []uint32
	Strings []string
	Caps    process.CapSet
	AnyCaps bool
}

// Postfix returns the rule's scope and event expressions in postfix
// order; an absent expression is a single OpTrue. Evaluating the ops over
// a stack of booleans gives what Match gives; the stack never holds more
// than StackDepth(ops) values.
func (r *Rule) Postfix() (scope, event []Op) {
	return postfix(r.scope, nil), postfix(r.event, nil)
}

func postfix(n *node, out []Op) []Op {
	if n == nil {
		return append(out, Op{Kind: OpTrue})
	}
	switch n.op {
	case opAnd, opOr:
		out = postfix(n.r, postfix(n.l, out))
		if n.op == opAnd {
			return append(out, Op{Kind: OpAnd})
		}
		return append(out, Op{Kind: OpOr})
	case opNot:
		return append(postfix(n.l, out), Op{Kind: OpNot})
	}
	name := attrs[n.attr].name
	if n.attr == attrArg {
		name = fmt.Sprintf("arg%d", n.arg)
	}
	return append(out, Op{Kind: OpMatch, Attr: name, Negate: n.neg,
		Ints: slices.Clone(n.ints), Strings: slices.Clone(n.strs), Caps: n.caps, AnyCaps: n.anyCaps})
}

// StackDepth returns the most values evaluating ops keeps on the stack.
func StackDepth(ops []Op) int {
	depth, most := 0, 0
	for _, op := range ops {
		switch op.Kind {
		case OpTrue, OpMatch:
			depth++
		case OpAnd, OpOr:
			depth--
		}
		most = max(most, depth)
	}
	return most
}

// EvalPostfix evaluates ops with the attribute values of in; it is the
// reference for compiled forms of the rules (and a check of Postfix).
func EvalPostfix(ops []Op, in *Input) bool {
	var st []bool
	for _, op := range ops {
		switch op.Kind {
		case OpTrue:
			st = append(st, true)
		case OpMatch:
			id, arg, _ := attrByNameN(op.Attr)
			n := node{op: opCmp, attr: id, arg: arg, neg: op.Negate, ints: op.Ints, strs: op.Strings, caps: op.Caps, anyCaps: op.AnyCaps}
			st = append(st, n.eval(in))
		case OpAnd, OpOr:
			a, b := st[len(st)-2], st[len(st)-1]
			st = st[:len(st)-2]
			if op.Kind == OpAnd {
				st = append(st, a && b)
			} else {
				st = append(st, a || b)
			}
		case OpNot:
			st[len(st)-1] = !st[len(st)-1]
		}
	}
	return len(st) == 1 && st[0]
}
