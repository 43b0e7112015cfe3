package ebpf

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/procfs"
)

const (
	cgroupRoot        = "/sys/fs/cgroup"
	cgroup2SuperMagic = 0x63677270
	cgroupCacheMax    = 8192
)

// cgroupCache maps cgroup v2 ids (the inode of the cgroup's directory) to
// what procfs.ParseCgroup makes of a member's /proc/<pid>/cgroup. It is
// used on hosts with the unified hierarchy only at /sys/fs/cgroup: there a
// process's cgroup path depends on its v2 cgroup alone. Elsewhere (hybrid
// or v1 hosts, where the path prefers a v1 hierarchy) the source leaves
// Cgroup to the monitor. Used by the reader goroutine only.
type cgroupCache struct {
	enabled bool
	proc    string
	m       map[uint64]procfs.Cgroup
}

func newCgroupCache(procRoot string) *cgroupCache {
	var st unix.Statfs_t
	on := unix.Statfs(cgroupRoot, &st) == nil && st.Type == cgroup2SuperMagic
	return &cgroupCache{enabled: on, proc: procRoot, m: make(map[uint64]procfs.Cgroup)}
}

// lookup returns the cgroup of id, reading it from pid's /proc entry the
// first time. The path read is kept only if its directory's inode is id:
// a process moved to another cgroup meanwhile teaches nothing.
func (c *cgroupCache) lookup(id uint64, pid int) (procfs.Cgroup, bool) {
	if c == nil || !c.enabled || id == 0 {
		return procfs.Cgroup{}, false
	}
	if cg, ok := c.m[id]; ok {
		return cg, true
	}
	cg, err := procfs.ReadCgroup(c.proc, pid)
	if err != nil || cg.Path == "" {
		return procfs.Cgroup{}, false
	}
	var st unix.Stat_t
	if unix.Stat(filepath.Join(cgroupRoot, cg.Path), &st) != nil || st.Ino != id {
		return procfs.Cgroup{}, false
	}
	if len(c.m) >= cgroupCacheMax {
		clear(c.m)
	}
	c.m[id] = cg
	return cg, true
}
