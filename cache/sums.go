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

// ComputeChecksums computes the selected checksums of proc's binary and
// stores them in proc.Checksums (with the IMA digest under process.HashIMA
// when the kernel measured the file). The file is opened through
// /proc/<pid>/exe while the process runs, else through RealPath and Path; a
// digest of another file than the one the process runs (its (device, inode)
// differs from what was recorded) is discarded. It reports whether proc has
// checksums afterwards. No store lock is held while hashing.
func (s *EventsStore) ComputeChecksums(proc *process.Process) bool {
	s.sumMu.RLock()
	algos := slices.Clone(s.algos)
	s.sumMu.RUnlock()
	if proc == nil || len(algos) == 0 {
		return false
	}
	proc.RLock()
	t := checksum.Target{PID: proc.ID, RealPath: proc.RealPath, Path: proc.Path}
	key, dev, ino := proc.Key(), proc.ExeDev, proc.ExeInode
	skip := proc.KernelThread || proc.Path == ""
	proc.RUnlock()
	if skip {
		return false
	}
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
		return false
	}
	sums := res.Digests
	if res.IMA != nil {
		sums[process.HashIMA] = res.IMA.Algorithm + ":" + res.IMA.Digest
	}
	s.mu.Lock()
	e := s.byKey[key]
	var shared map[string]string
	if e != nil && e.proc == proc {
		e.sums = s.mapTab.Share(sums)
		shared = e.sums.V
	} else {
		shared = sums
	}
	proc.Lock()
	proc.Checksums = shared
	proc.Unlock()
	s.mu.Unlock()
	s.sums.Add(1)
	return true
}

// backfill computes the checksums of cached live processes that have none,
// two at a time (the hasher bounds concurrent reads as well).
func (s *EventsStore) backfill() {
	var todo []*process.Process
	s.mu.RLock()
	for _, e := range s.byKey {
		e.proc.RLock()
		missing := len(e.proc.Checksums) == 0 && !e.proc.KernelThread && e.proc.Path != ""
		e.proc.RUnlock()
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
