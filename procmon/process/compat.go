package process

import "github.com/proctrack/proctrack/internal/procfs"

// CopyInto copies every field of p into dst, under p's read lock: dst
// becomes a snapshot of p whose top-level fields are its own. dst must not
// be in use by another goroutine (it is not locked).
// What the fields point to (Parent, Tree's items, Args, Env, Checksums,
// Descriptors, Statm, IOStats, NetStats, Creds.Groups) is shared with p and
// must be treated as read-only. dst's lock is not copied (a copy of a held
// lock would stay held); copying p into itself does nothing.
func (p *Process) CopyInto(dst *Process) {
	if dst == nil || dst == p {
		return
	}
	p.RLock()
	defer p.RUnlock()
	dst.Statm, dst.Parent, dst.IOStats, dst.NetStats = p.Statm, p.Parent, p.IOStats, p.NetStats
	dst.Env, dst.Checksums = p.Env, p.Checksums
	dst.Status, dst.Stat, dst.Stack, dst.Maps = p.Status, p.Stat, p.Stack, p.Maps
	dst.Comm, dst.Path, dst.RealPath, dst.CWD = p.Comm, p.Path, p.RealPath, p.CWD
	dst.Tree, dst.Descriptors, dst.Args = p.Tree, p.Descriptors, p.Args
	dst.Starttime, dst.ID, dst.PPID, dst.UID = p.Starttime, p.ID, p.PPID, p.UID
	dst.StartedAt, dst.Creds, dst.NS, dst.Root = p.StartedAt, p.Creds, p.NS, p.Root
	dst.Cgroup, dst.ContainerID, dst.ContainerRuntime = p.Cgroup, p.ContainerID, p.ContainerRuntime
	dst.ExeDev, dst.ExeInode = p.ExeDev, p.ExeInode
	dst.KernelThread, dst.Zombie, dst.ExeDeleted = p.KernelThread, p.Zombie, p.ExeDeleted
	dst.Fileless, dst.Incomplete = p.Fileless, p.Incomplete
	dst.ArgsTruncated, dst.EnvTruncated = p.ArgsTruncated, p.EnvTruncated
}

// Clone returns a snapshot of p (see CopyInto): changing the copy's fields
// leaves p alone. It is the copy `go vet` accepts where `c := *p` copies the
// lock.
func (p *Process) Clone() *Process {
	c := &Process{}
	p.CopyInto(c)
	return c
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
