package process

import (
	"os"
	"strconv"

	"github.com/proctrack/proctrack/internal/procfs"
)

// maxTreeDepth bounds ancestry walks, against cycles in bad input.
const maxTreeDepth = 256

// IsAlive reports whether the process is still running: its pid exists, is
// not a zombie, and, when the start time is known, was not reused by a
// newer process.
func (p *Process) IsAlive() bool {
	if p.ID <= 0 {
		return false
	}
	s, _, err := procfs.ReadStat(procRoot, p.ID)
	if err != nil || s.State == 'Z' || s.State == 'X' {
		return false
	}
	return p.Starttime == 0 || uint64(p.Starttime) == s.StartTicks
}

// GetParent sets Parent, when it is not set, to the process PPID names: its
// identity and path read from /proc. A pid that is now older than its child
// cannot be its parent and is not taken. Pids 0 and 1 have no parent.
func (p *Process) GetParent() {
	if p.Parent != nil || p.ID <= 1 {
		return
	}
	if p.PPID == 0 {
		p.ReadPPID()
	}
	p.Parent = p.readParent()
}

// readParent reads the process PPID names from /proc (see GetParent)
// without changing p; nil when there is none.
func (p *Process) readParent() *Process {
	ppid := p.PPID
	if ppid == 0 && p.ID > 1 {
		if s, _, err := procfs.ReadStat(procRoot, p.ID); err == nil {
			ppid = s.PPID
		}
	}
	if p.ID <= 1 || ppid <= 0 || ppid == p.ID {
		return nil
	}
	parent := NewProcess(ppid, "")
	if parent.Starttime == 0 || (p.Starttime != 0 && parent.Starttime > p.Starttime) {
		return nil
	}
	if !parent.KernelThread {
		_ = parent.ReadPath()
	}
	return parent
}

// BuildTree fills Tree with the ancestors, parent first, up to pid 1 (or the
// oldest ancestor that can be found), following Parent links where they are
// set and /proc where they are not. Only p changes (GetParent, and Tree as a
// new slice): the ancestors, which may be cached copies, are left alone.
func (p *Process) BuildTree() {
	p.GetParent()
	var tree []*TreeItem
	for cur, depth := p.Parent, 0; cur != nil && depth < maxTreeDepth; depth++ {
		name := cur.Path
		if name == "" || name == KernelConnection {
			name = cur.Comm
		}
		tree = append(tree, &TreeItem{Key: name, Value: uint32(cur.ID)})
		next := cur.Parent
		if next == nil {
			next = cur.readParent()
		}
		cur = next
	}
	p.Tree = tree
}

// IsChild reports whether this process is a child of its parent that still
// runs the parent's image: a fork that has not exec'd (the parent is alive
// and has the same binary), or a thread of the parent (the pid is one of the
// parent's tasks). Such processes usually act for their parent.
func (p *Process) IsChild() bool {
	if p.PPID > 0 {
		if _, err := os.Lstat(procfs.Path(procRoot, p.PPID, "task/"+strconv.Itoa(p.ID))); err == nil {
			return true
		}
	}
	p.GetParent()
	return p.Parent != nil && p.Path != "" && p.Parent.Path == p.Path && p.Parent.IsAlive()
}
