package process

import (
	"os"
	"testing"
)

// TestCopyChangesLeaveOriginal: the methods that change a Process, called
// on a copy (c := *p, as the cache's versions are changed), never write
// into what the copy shares with the original: BuildTree makes a new Tree
// and does not set the Parent of ancestors, CleanArgs makes new Args.
func TestCopyChangesLeaveOriginal(t *testing.T) {
	p := FindProcess(os.Getpid(), false)
	if p == nil {
		t.Fatal("no process")
	}
	p.BuildTree()
	if len(p.Tree) < 2 {
		t.Skipf("tree %v: too shallow here", p.Tree)
	}
	first := p.Tree[0]
	if p.Parent.Parent != nil {
		p.Parent.Parent = nil // an ancestor whose parent was not linked
	}
	c := *p
	c.BuildTree()
	if p.Tree[0] != first {
		t.Error("BuildTree on a copy wrote into the original's Tree")
	}
	if p.Parent.Parent != nil {
		t.Error("BuildTree set the Parent of an ancestor")
	}
	if len(c.Tree) != len(p.Tree) {
		t.Errorf("copy's tree %d long, original's %d", len(c.Tree), len(p.Tree))
	}

	args := []string{"/proc/self/exe", "x"}
	q := Process{ID: os.Getpid(), Path: "/usr/bin/x", Args: args}
	q.CleanArgs()
	if args[0] != "/proc/self/exe" || q.Args[0] != "/usr/bin/x" {
		t.Errorf("CleanArgs: shared %q, own %q", args, q.Args)
	}
}
