package cache

import (
	"reflect"
	"slices"

	"github.com/proctrack/proctrack/internal/intern"
	"github.com/proctrack/proctrack/procmon/process"
)

// Add caches proc. A process whose Key is cached already is treated as an
// exec (or a refresh) of that entry: the entry gets a new version with
// proc's image, and keeps its identity, ancestry and history. The parent is
// taken from the cache, or read from /proc (and cached) when missing. A proc
// without a start time gets it from /proc; if the process is gone by then it
// is cached under start time 0. With checksums enabled, they are computed
// into proc before it is cached, unless the entry already has them for the
// same binary. After Add the store owns proc: do not change it (copy it),
// and treat Args, Env and Checksums as read-only.
func (s *EventsStore) Add(proc *process.Process) {
	if proc != nil {
		s.Put(proc)
	}
}

func (s *EventsStore) add(p *process.Process, budget *int, readStart bool) *entry {
	fillStart(p, readStart)
	parent := s.resolveParent(p, budget)
	return s.insert(p, parent)
}

// fillStart gives p, without a start time, the one of its pid in /proc
// (with readStart), and reads what process.FindProcess leaves for later
// (namespaces, root, cgroup: the rules and the cache's readers take them
// from the fields).
func fillStart(p *process.Process, readStart bool) {
	p.Complete()
	if readStart && p.Starttime == 0 && p.ID > 0 {
		if k, err := process.CurrentKey(p.ID); err == nil {
			p.Starttime = int64(k.StartTicks)
		}
	}
}

// resolveParent returns the cache entry of p's parent, reading the parent
// from /proc (and caching it, with its own ancestors) when the cache lacks
// it. No store lock is held while /proc is read.
func (s *EventsStore) resolveParent(p *process.Process, budget *int) *entry {
	if p.ID <= 1 || p.PPID <= 0 || p.PPID == p.ID {
		return nil
	}
	if e := s.parentInCache(p); e != nil {
		return e
	}
	if *budget <= 0 {
		return nil
	}
	*budget--
	pp := process.NewProcessEmpty(p.PPID, "")
	if err := pp.GetDetails(); err != nil || (p.Starttime != 0 && pp.Starttime > p.Starttime) {
		return nil // gone, or the pid now names a process younger than its child
	}
	s.ancestorReads.Add(1)
	return s.add(pp, budget, true)
}

// parentInCache returns the newest cached process with p's PPID that started
// no later than p.
func (s *EventsStore) parentInCache(p *process.Process) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byPID[p.PPID]
	if e == nil || (p.Starttime != 0 && int64(e.key.StartTicks) > p.Starttime) {
		return nil
	}
	return e
}

// insert adds p under the store lock (p becomes the entry's first version),
// or applies it to the entry of its Key (a new version).
func (s *EventsStore) insert(p *process.Process, parent *entry) *entry {
	k := p.Key()
	t := now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byKey[k]; e != nil {
		if e.proc != p {
			s.applyImage(e, p)
		}
		e.lastSeen.Store(t)
		e.confirmed.Store(t)
		return e
	}
	e := &entry{key: k, proc: p}
	s.share(e, p, parent)
	s.countCuts(p, false, false)
	if parent != nil && parent.proc != p {
		p.Parent = parent.proc
		p.Tree = make([]*process.TreeItem, 0, len(parent.proc.Tree)+1)
		p.Tree = append(append(p.Tree, parent.ancestor()), parent.proc.Tree...)
	}
	e.lastSeen.Store(t)
	e.confirmed.Store(t)
	if p.Zombie {
		e.exited.Store(t)
	}
	s.byKey[k] = e
	if old := s.byPID[p.ID]; old == nil || old.key.StartTicks <= k.StartTicks {
		if old != nil && old.exited.Load() == 0 {
			// Two live processes cannot share a pid: the old one is gone.
			old.exited.Store(t)
			s.exits.Add(1)
		}
		s.byPID[p.ID] = e
	}
	s.added.Add(1)
	if len(s.byKey) > s.cfg.MaxEntries {
		s.evict()
	}
	return e
}

// applyImage gives e a new version: the current one with n's image (the exec
// of a cached process, or a refresh of its details). Identity, Parent and
// Tree stay. Neither the current version nor n is changed. The caller holds
// the store lock.
func (s *EventsStore) applyImage(e *entry, n *process.Process) {
	v := *e.proc
	p := &v
	if p.Path != n.Path || !slices.Equal(p.Args, n.Args) {
		if p.Path != "" {
			e.prevPaths = append(e.prevPaths, p.Path)
			if len(e.prevPaths) > maxPrevPaths {
				e.prevPaths = e.prevPaths[len(e.prevPaths)-maxPrevPaths:]
			}
		}
		e.execs++
		s.execs.Add(1)
	}
	sameExe := sameExe(p, n)
	keepSums := p.Checksums
	argsCut, envCut := p.ArgsTruncated, p.EnvTruncated
	p.Path, p.RealPath, p.Args, p.Env, p.Comm, p.CWD = n.Path, n.RealPath, n.Args, n.Env, n.Comm, n.CWD
	p.Creds, p.UID, p.NS, p.Root = n.Creds, n.UID, n.NS, n.Root
	p.Cgroup, p.ContainerID, p.ContainerRuntime = n.Cgroup, n.ContainerID, n.ContainerRuntime
	p.ExeDev, p.ExeInode, p.ExeDeleted, p.Fileless = n.ExeDev, n.ExeInode, n.ExeDeleted, n.Fileless
	p.KernelThread, p.Zombie, p.Incomplete = n.KernelThread, n.Zombie, n.Incomplete
	p.ArgsTruncated, p.EnvTruncated = n.ArgsTruncated, n.EnvTruncated
	// The parent may have exited and this process been reparented (to a
	// subreaper or init): PPID follows the kernel, Parent keeps the lineage.
	p.PPID = n.PPID
	p.Checksums = n.Checksums
	if len(p.Checksums) == 0 && sameExe {
		p.Checksums = keepSums
	} else {
		e.sums = nil
	}
	s.share(e, p, e)
	s.countCuts(p, argsCut, envCut)
	if e.self != nil && e.self.Key != treeName(p) {
		e.self = nil // children forked before the exec keep the old item
	}
	if p.Zombie && e.exited.Load() == 0 {
		e.exited.Store(now())
	}
	e.proc = p
}

// sameExe reports whether n runs the same binary as p: the same file, or the
// same path where p's file was never identified (an event's fast read).
func sameExe(p, n *process.Process) bool {
	return (p.ExeInode != 0 && p.ExeInode == n.ExeInode && p.ExeDev == n.ExeDev) ||
		(p.ExeInode == 0 && p.Path != "" && p.Path == n.Path)
}

// Change gives the cached process with Key k a new version: a copy of the
// current one that fn changed (an event that changes a field or two: the
// credentials, the name). It returns the new version; false, with fn not
// called, when k is not cached. fn runs under the store's lock: it must be
// quick, call no method of the store, leave ID and Starttime alone, and
// replace rather than write into Args, Env, Checksums and Tree.
func (s *EventsStore) Change(k process.Key, fn func(p *process.Process)) (*process.Process, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byKey[k]
	if e == nil {
		return nil, false
	}
	v := *e.proc
	fn(&v)
	if e.self != nil && e.self.Key != treeName(&v) {
		e.self = nil
	}
	e.proc = &v
	e.lastSeen.Store(now())
	return &v, true
}

// share replaces p's strings, argument list, environment and checksum map
// with shared copies. Values p holds from another entry (a forked child
// holds its parent's) are recognised by identity, not hashed again, and
// keep that entry's truncation flags; other arguments and environments are
// first cut to the store's bounds.
func (s *EventsStore) share(e *entry, p *process.Process, from *entry) {
	p.Path, p.RealPath, p.CWD = intern.String(p.Path), intern.String(p.RealPath), intern.String(p.CWD)
	p.Comm, p.Root, p.Cgroup = intern.String(p.Comm), intern.String(p.Root), intern.String(p.Cgroup)
	p.ContainerID, p.ContainerRuntime = intern.String(p.ContainerID), intern.String(p.ContainerRuntime)
	e.args, e.env = nil, nil
	switch {
	case p.Args == nil:
	case from != nil && from.args != nil && sameSlice(p.Args, from.args.V):
		e.args = from.args
		p.ArgsTruncated = from.proc.ArgsTruncated
	default:
		args, cut := process.BoundArgs(p.Args, s.cfg.MaxArgsBytes)
		p.ArgsTruncated = p.ArgsTruncated || cut
		e.args = s.argsTab.Share(args)
		p.Args = e.args.V
	}
	switch {
	case p.Env == nil:
	case from != nil && from.env != nil && sameMap(p.Env, from.env.V):
		e.env = from.env
		p.EnvTruncated = from.proc.EnvTruncated
	default:
		env, cut := process.BoundEnv(p.Env, s.cfg.MaxEnvBytes)
		p.EnvTruncated = p.EnvTruncated || cut
		e.env = s.mapTab.Share(env)
		p.Env = e.env.V
	}
	switch {
	case len(p.Checksums) == 0:
		p.Checksums = nil
		e.sums = nil
	case from != nil && from.sums != nil && sameMap(p.Checksums, from.sums.V):
		e.sums = from.sums
	default:
		e.sums = s.mapTab.Share(p.Checksums)
		p.Checksums = e.sums.V
	}
}

// countCuts counts p in Stats' ArgsTruncated and EnvTruncated when its
// arguments or environment are cut and were not before (once per process).
func (s *EventsStore) countCuts(p *process.Process, argsWere, envWere bool) {
	if p.ArgsTruncated && !argsWere {
		s.argsCut.Add(1)
	}
	if p.EnvTruncated && !envWere {
		s.envCut.Add(1)
	}
}

// sameSlice reports whether a and b are the same slice (not merely equal).
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func treeName(p *process.Process) string {
	if p.Path == "" || p.KernelThread {
		return p.Comm
	}
	return p.Path
}

// ancestor returns e's process as an ancestor in its children's Tree,
// made at the first child of its current name (most processes have no
// child: a storm's execs cost no item). The caller holds the store lock
// for writing.
func (e *entry) ancestor() *process.TreeItem {
	if e.self == nil {
		e.self = &process.TreeItem{Key: treeName(e.proc), Value: uint32(e.proc.ID)}
	}
	return e.self
}

// evict removes about a sixteenth of MaxEntries: exited entries first
// (oldest exit first), then the least recently seen. The caller holds the
// store lock.
func (s *EventsStore) evict() {
	n := s.cfg.MaxEntries/16 + 1
	all := make([]*entry, 0, len(s.byKey))
	for _, e := range s.byKey {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b *entry) int {
		ax, bx := a.exited.Load(), b.exited.Load()
		switch {
		case ax != 0 && bx == 0:
			return -1
		case ax == 0 && bx != 0:
			return 1
		case ax != 0:
			return cmpInt64(ax, bx)
		}
		return cmpInt64(a.lastSeen.Load(), b.lastSeen.Load())
	})
	for _, e := range all[:min(n, len(all))] {
		s.remove(e)
		s.evicted.Add(1)
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// remove drops e from the indexes. The caller holds the store lock.
func (s *EventsStore) remove(e *entry) {
	delete(s.byKey, e.key)
	if s.byPID[e.key.PID] == e {
		delete(s.byPID, e.key.PID)
	}
}

// Update applies proc, the new image of the cached oldProc (an exec), to
// oldProc's entry. When oldProc is not cached, proc is added.
func (s *EventsStore) Update(oldProc, proc *process.Process) {
	if oldProc != nil && proc != nil && oldProc.Key() == proc.Key() {
		proc.Complete()
		s.mu.Lock()
		e := s.byKey[oldProc.Key()]
		if e != nil && e.proc != proc {
			s.applyImage(e, proc)
			e.lastSeen.Store(now())
		}
		s.mu.Unlock()
		if e != nil {
			return
		}
	}
	s.Add(proc)
}

// UpdateItem refreshes the entry of proc's Key with proc's details, or adds
// proc when it is not cached.
func (s *EventsStore) UpdateItem(proc *process.Process) { s.Add(proc) }

// ReplaceItem replaces oldProc with newProc. With the same Key this is an
// exec (Update); with another (the pid was reused) oldProc is marked exited
// and newProc added.
func (s *EventsStore) ReplaceItem(oldProc, newProc *process.Process) {
	if oldProc != nil && newProc != nil && oldProc.Key() != newProc.Key() {
		s.Exit(oldProc.Key())
	}
	s.Update(oldProc, newProc)
}

// Put is Add returning the cached version: proc itself when its Key was not
// cached, else a new version, the cached process with proc's image applied.
// With checksums enabled, proc is given them before it is cached (unless
// the cached version has them for the same binary), so that the version
// Put returns has them.
func (s *EventsStore) Put(proc *process.Process) *process.Process {
	return s.put(proc, true)
}

// PutGone is Put for a process that was gone from /proc before its start
// time could be read: a proc without a start time is cached without one
// (Key{PID, 0}), and not given the start time its pid has in /proc now,
// which would be a younger process's if the pid was reused.
func (s *EventsStore) PutGone(proc *process.Process) *process.Process {
	return s.put(proc, false)
}

// put is Put, reading a missing start time from /proc with readStart.
func (s *EventsStore) put(proc *process.Process, readStart bool) *process.Process {
	budget := maxAncestorReads
	fillStart(proc, readStart)
	compute := s.GetComputeChecksums()
	hashed := compute && s.wantsSums(proc)
	if hashed {
		if sums, ok := s.hash(proc); ok {
			proc.Checksums = sums // not cached yet: still the caller's
		}
	}
	e := s.add(proc, &budget, readStart)
	s.mu.RLock()
	v := e.proc
	s.mu.RUnlock()
	if compute && !hashed && len(v.Checksums) == 0 && s.ComputeChecksums(v) {
		s.mu.RLock()
		v = e.proc
		s.mu.RUnlock()
	}
	return v
}

// wantsSums reports whether proc, about to be cached, needs checksums: it
// has none, and the cached version of its Key does not have them for the
// same binary. A proc that is the cached version already is left to
// ComputeChecksums (it must not change).
func (s *EventsStore) wantsSums(proc *process.Process) bool {
	if len(proc.Checksums) > 0 || proc.KernelThread || proc.Path == "" {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byKey[proc.Key()]
	if e == nil {
		return true
	}
	return e.proc != proc && !(len(e.proc.Checksums) > 0 && sameExe(e.proc, proc))
}

// AddNew adds proc only if its Key is not cached, and reports whether it did.
// A /proc scan merged with an event stream uses it: an entry an event made
// is newer than what the scan read.
func (s *EventsStore) AddNew(proc *process.Process) bool {
	s.mu.RLock()
	_, cached := s.byKey[proc.Key()]
	s.mu.RUnlock()
	if cached {
		return false
	}
	s.Add(proc)
	return true
}
