package rules

import (
	"path"
	"slices"
	"strings"

	"github.com/proctrack/proctrack/procmon/process"
)

// nodeOp is the operation of an AST node.
type nodeOp uint8

const (
	opCmp nodeOp = iota
	opAnd
	opOr
	opNot
)

// node is a node of a compiled expression.
type node struct {
	op   nodeOp
	l, r *node
	// comparison (opCmp): attribute, negation (!=) and the values.
	attr    attrID
	neg     bool
	ints    []uint32
	strs    []string
	caps    process.CapSet // the named capabilities
	ncaps   int
	anyCaps bool // ANY_CAPS was among the values
	arg     int  // attrArg: N of argN (it names the comparison only)
	// intSet and strSet hold the values of a long list (over setMin), for
	// lookups that do not grow with it.
	intSet map[uint32]struct{}
	strSet map[string]struct{}
}

// setMin is the number of values from which a comparison looks its values
// up in a map rather than a slice.
const setMin = 16

// index builds the maps of a comparison with many values.
func (n *node) index() {
	if len(n.ints) >= setMin {
		n.intSet = make(map[uint32]struct{}, len(n.ints))
		for _, v := range n.ints {
			n.intSet[v] = struct{}{}
		}
	}
	if len(n.strs) >= setMin && attrs[n.attr].typ != typePrefix {
		n.strSet = make(map[string]struct{}, len(n.strs))
		for _, v := range n.strs {
			n.strSet[v] = struct{}{}
		}
	}
}

// hasInt reports whether v is one of the integer values.
func (n *node) hasInt(v uint32) bool {
	if n.intSet != nil {
		_, ok := n.intSet[v]
		return ok
	}
	return slices.Contains(n.ints, v)
}

// hasStr reports whether s is one of the string values.
func (n *node) hasStr(s string) bool {
	if n.strSet != nil {
		_, ok := n.strSet[s]
		return ok
	}
	return slices.Contains(n.strs, s)
}

// count returns the number of values of a comparison.
func (n *node) count() int {
	c := len(n.ints) + len(n.strs) + n.ncaps
	if n.anyCaps {
		c++
	}
	return c
}

// eval evaluates the node.
func (n *node) eval(in *Input) bool {
	switch n.op {
	case opAnd:
		return n.l.eval(in) && n.r.eval(in)
	case opOr:
		return n.l.eval(in) || n.r.eval(in)
	case opNot:
		return !n.l.eval(in)
	}
	return n.cmp(in) != n.neg
}

// cmp evaluates a comparison without its negation: whether the attribute
// equals one of the values.
func (n *node) cmp(in *Input) bool {
	switch n.attr {
	case attrUID:
		return n.hasInt(in.UID)
	case attrEUID:
		return n.hasInt(in.EUID)
	case attrGID:
		return n.hasInt(in.GID)
	case attrEGID:
		return n.hasInt(in.EGID)
	case attrECaps:
		return n.capsMatch(in.ECaps)
	case attrPCaps:
		return n.capsMatch(in.PCaps)
	case attrPath:
		return n.hasStr(in.Path)
	case attrName:
		return n.hasStr(in.name())
	case attrPathPrefix:
		return n.prefixMatch(in.Path)
	case attrBinaryPath:
		return n.hasStr(in.Binary)
	case attrBinaryName:
		return n.hasStr(baseName(in.Binary))
	case attrBinaryPrefix:
		return n.prefixMatch(in.Binary)
	case attrParentBinaryPath:
		return n.hasStr(in.ParentBinary)
	case attrParentBinaryName:
		return n.hasStr(baseName(in.ParentBinary))
	case attrParentBinaryPrefix:
		return n.prefixMatch(in.ParentBinary)
	case attrArg:
		// Bombini's semantics: one of the exec's arguments (argv[1:]) is
		// one of the values, whatever its position; N of argN only tells
		// comparisons apart.
		for _, a := range in.Args {
			if n.hasStr(a) {
				return true
			}
		}
	}
	return false
}

// capsMatch: a set matches when it holds any of the named capabilities, or
// is not empty and ANY_CAPS was named.
func (n *node) capsMatch(set process.CapSet) bool {
	return set&n.caps != 0 || (n.anyCaps && set != 0)
}

// prefixMatch reports whether p is one of the prefixes or below one, by
// whole path components.
func (n *node) prefixMatch(p string) bool {
	for _, pre := range n.strs {
		if HasPathPrefix(p, pre) {
			return true
		}
	}
	return false
}

// HasPathPrefix reports whether path p is prefix or lies below it, by whole
// components: "/tmp" is a prefix of "/tmp" and "/tmp/x/ls" but not of
// "/tmpfoo/ls". Trailing slashes of prefix are ignored, so "/" (or "")
// is a prefix of every absolute path. An empty p (unknown) has no prefix.
func HasPathPrefix(p, prefix string) bool {
	if p == "" {
		return false
	}
	prefix = strings.TrimRight(prefix, "/")
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// baseName returns the last component of a path, "" for "".
func baseName(p string) string {
	if p == "" {
		return ""
	}
	return path.Base(p)
}
