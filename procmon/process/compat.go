package process

import "github.com/proctrack/proctrack/internal/procfs"

// CopyInto copies every field of p into dst: dst becomes a copy of p whose
// top-level fields are its own, as *dst = *p does. What the fields point to
// (Parent, Tree's items, Args, Env, Checksums, Descriptors, Statm, IOStats,
// NetStats, Creds.Groups) is shared with p and must be treated as read-only.
// A nil dst is left alone.
func (p *Process) CopyInto(dst *Process) {
	if dst != nil {
		*dst = *p
	}
}

// Clone returns a copy of p (see CopyInto): changing the copy's fields
// leaves p alone.
func (p *Process) Clone() *Process {
	c := *p
	return &c
}

// TreeInsertItem inserts an item (a path, or a comm when the path is unknown,
// and a pid) at the front of Tree. Tree lists ancestors, parent first; an
// OpenSnitch-style tree that starts with the process itself is
// p.TreeInsertItem(p.Path, p.ID) after BuildTree.
func (p *Process) TreeInsertItem(path string, pid int) {
	t := make([]*TreeItem, 0, len(p.Tree)+1)
	p.Tree = append(append(t, &TreeItem{Key: path, Value: uint32(pid)}), p.Tree...)
}

// ReadRoot reads /proc/<pid>/root into Root: "/" unless the process is
// chrooted or in another mount namespace. An error leaves Root as it was.
func (p *Process) ReadRoot() error {
	r, err := procfs.Readlink(p.procPath("root"))
	if err != nil {
		return err
	}
	p.Root = r
	return nil
}
