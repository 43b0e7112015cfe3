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
		return slices.Contains(n.ints, in.UID)
	case attrEUID:
		return slices.Contains(n.ints, in.EUID)
	case attrGID:
		return slices.Contains(n.ints, in.GID)
	case attrEGID:
		return slices.Contains(n.ints, in.EGID)
	case attrECaps:
		return n.capsMatch(in.ECaps)
	case attrPCaps:
		return n.capsMatch(in.PCaps)
	case attrPath:
		return slices.Contains(n.strs, in.Path)
	case attrName:
		return slices.Contains(n.strs, in.name())
	case attrPathPrefix:
		return n.prefixMatch(in.Path)
	case attrBinaryPath:
		return slices.Contains(n.strs, in.Binary)
	case attrBinaryName:
		return slices.Contains(n.strs, baseName(in.Binary))
	case attrBinaryPrefix:
		return n.prefixMatch(in.Binary)
	case attrParentBinaryPath:
		return slices.Contains(n.strs, in.ParentBinary)
	case attrParentBinaryName:
		return slices.Contains(n.strs, baseName(in.ParentBinary))
	case attrParentBinaryPrefix:
		return n.prefixMatch(in.ParentBinary)
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
