package ebpf

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/procfs"
)

// seedExePaths adds the executable path of every process /proc lists to
// the in-kernel map the scope attributes read, without replacing what the
// programs wrote meanwhile. The start time is stored at the tick
// resolution of /proc, which is what the programs compare.
func seedExePaths(m *ebpf.Map, procRoot string) (int, error) {
	return seedMap(m, procRoot, func(pid int, s *procfs.Stat) (bpf.ProcmonExeVal, bool) {
		exe, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "exe"))
		if err != nil {
			return bpf.ProcmonExeVal{}, false // a kernel thread, or gone
		}
		exe = strings.TrimSuffix(exe, deletedSuffix)
		v := bpf.ProcmonExeVal{StartNs: s.StartTicks * nsPerTick, Len: uint32(len(exe))}
		for i := 0; i < len(exe) && i < ruleStr-1; i++ {
			v.Path[i] = int8(exe[i])
		}
		return v, true
	})
}

// seedMap adds an entry for each live process /proc lists (value says what,
// or false for none) to a map keyed by tgid, keeping the entries there.
func seedMap[V any](m *ebpf.Map, procRoot string, value func(pid int, s *procfs.Stat) (V, bool)) (int, error) {
	pids, err := procfs.PIDs(procRoot)
	if err != nil {
		return 0, err
	}
	r := procfs.NewReader(procRoot)
	n := 0
	for _, pid := range pids {
		s, err := r.Stat(pid)
		if err != nil || s.State == 'Z' || s.State == 'X' {
			continue
		}
		v, ok := value(pid, s)
		if !ok {
			continue
		}
		switch err := m.Update(uint32(pid), &v, ebpf.UpdateNoExist); {
		case err == nil:
			n++
		case errors.Is(err, ebpf.ErrKeyExist):
		default:
			return n, err
		}
	}
	return n, nil
}

// gcExePaths removes the entries of the map of executable paths whose
// process is gone: the pid is unused, a zombie, or another process (other
// start ticks). It returns how many it removed. The exit program removes
// entries as processes exit; this catches what it could not (a process that
// exited after /proc was read for the seed but before the programs were
// attached).
func gcExePaths(m *ebpf.Map, procRoot string) (int, error) {
	return gcMap(m, procRoot, func(v *bpf.ProcmonExeVal) uint64 { return v.StartNs })
}

// gcMap removes the entries of a map keyed by tgid whose process is gone;
// startNs returns the start time an entry holds.
func gcMap[V any](m *ebpf.Map, procRoot string, startNs func(*V) uint64) (int, error) {
	r := procfs.NewReader(procRoot)
	var (
		k     uint32
		v     V
		stale []uint32
		ns    []uint64
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		s, err := r.Stat(int(k))
		if err != nil || s.State == 'Z' || s.State == 'X' || s.StartTicks != startNs(&v)/nsPerTick {
			stale = append(stale, k)
			ns = append(ns, startNs(&v))
		}
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	removed := 0
	for i, k := range stale {
		// The kernel may have reused the pid since: remove only the
		// entry that was judged.
		var now V
		if m.Lookup(k, &now) != nil || startNs(&now) != ns[i] {
			continue
		}
		if err := m.Delete(k); err == nil {
			removed++
		}
	}
	return removed, nil
}
