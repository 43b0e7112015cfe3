package cache

import (
	"context"
	"slices"
	"sync"

	"github.com/proctrack/proctrack/checksum"
	"github.com/proctrack/proctrack/procmon/process"
)

// AddChecksumHash adds an algorithm (process.HashMD5, HashSHA1, HashSHA256)
// to those computed. MD5 is selected by default, as in the seed.
func (s *EventsStore) AddChecksumHash(hash string) {
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	if !slices.Contains(s.algos, hash) {
		s.algos = append(s.algos, hash)
	}
}

// DelChecksumHash removes an algorithm from those computed.
func (s *EventsStore) DelChecksumHash(hash string) {
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	s.algos = slices.DeleteFunc(s.algos, func(a string) bool { return a == hash })
}

// SetComputeChecksums turns checksums on or off. Turning them on computes
// the checksums of every cached live process that has none (back-fill),
// before it returns.
func (s *EventsStore) SetComputeChecksums(compute bool) {
	s.sumMu.Lock()
	was := s.compute
	s.compute = compute
	s.sumMu.Unlock()
	if compute && !was {
		s.backfill()
	}
}

// GetComputeChecksums reports whether checksums are computed: enabled and at
// least one algorithm selected.
func (s *EventsStore) GetComputeChecksums() bool {
	s.sumMu.RLock()
	defer s.sumMu.RUnlock()
	return s.compute && len(s.algos) > 0
}

// DisableChecksums turns checksums off.
func (s *EventsStore) DisableChecksums() { s.SetComputeChecksums(false) }

func (s *EventsStore) getHasher() *checksum.Hasher {
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	if s.hasher == nil {
		s.hasher = checksum.New(checksum.Config{})
	}
	return s.hasher
}

// ComputeChecksums computes the selected checksums of proc's binary (with
// the IMA digest under process.HashIMA when the kernel measured the file).
// The file is opened through /proc/<pid>/exe while the process runs, else
// through RealPath and Path; a digest of another file than the one the
// process runs (its (device, inode) differs from what was recorded) is
// discarded. When proc's Key is cached and its current version runs the same
// binary, that entry gets a new version with the checksums. proc itself is
// given them too, unless it is the current cached version (which never
// changes): pass a Process you own, such as one from FindProcess. It reports
// whether the checksums were computed. No store lock is held while hashing.
func (s *EventsStore) ComputeChecksums(proc *process.Process) bool {
	if proc == nil {
		return false
	}
	sums, ok := s.hash(proc)
	if !ok {
		return false
	}
	s.mu.Lock()
	current := false
	if e := s.byKey[proc.Key()]; e != nil && (e.proc == proc || sameExe(e.proc, proc)) {
		current = e.proc == proc
		v := *e.proc
		e.sums = s.mapTab.Share(sums)
		v.Checksums = e.sums.V
		e.proc = &v
		sums = v.Checksums
	}
	s.mu.Unlock()
	if !current {
		proc.Checksums = sums
	}
	return true
}

// hash computes the selected checksums of proc's binary (see
// ComputeChecksums), reading proc only.
func (s *EventsStore) hash(proc *process.Process) (map[string]string, bool) {
	s.sumMu.RLock()
	algos := slices.Clone(s.algos)
	s.sumMu.RUnlock()
	if len(algos) == 0 || proc.KernelThread || proc.Path == "" {
		return nil, false
	}
	t := checksum.Target{PID: proc.ID, RealPath: proc.RealPath, Path: proc.Path}
	key, dev, ino := proc.Key(), proc.ExeDev, proc.ExeInode
	// /proc/<pid>/exe is only this process's while the pid is its own.
	if k, err := process.CurrentKey(t.PID); err != nil || k != key {
		t.PID = 0
	}
	res, err := s.getHasher().Sum(context.Background(), t, algos...)
	if err == nil && ino != 0 && (res.Dev != dev || res.Inode != ino) {
		err = checksum.ErrMismatch
	}
	if err != nil {
		s.sumErrs.Add(1)
		s.log.Debug("checksum", "pid", key.PID, "path", t.Path, "err", err)
		return nil, false
	}
	sums := res.Digests
	if res.IMA != nil {
		sums[process.HashIMA] = res.IMA.Algorithm + ":" + res.IMA.Digest
	}
	s.sums.Add(1)
	return sums, true
}

// backfill computes the checksums of cached live processes that have none,
// two at a time (the hasher bounds concurrent reads as well).
func (s *EventsStore) backfill() {
	var todo []*process.Process
	s.mu.RLock()
	for _, e := range s.byKey {
		missing := len(e.proc.Checksums) == 0 && !e.proc.KernelThread && e.proc.Path != ""
		if missing && e.exited.Load() == 0 {
			todo = append(todo, e.proc)
		}
	}
	s.mu.RUnlock()
	work := make(chan *process.Process)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				s.ComputeChecksums(p)
			}
		}()
	}
	for _, p := range todo {
		work <- p
	}
	close(work)
	wg.Wait()
}
