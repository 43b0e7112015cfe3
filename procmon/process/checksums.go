package process

import (
	"context"
	"maps"
	"sync"

	"github.com/proctrack/proctrack/checksum"
)

var (
	hasherOnce    sync.Once
	defaultHasher *checksum.Hasher
)

// hasher returns the package's hasher, created on first use.
func hasher() *checksum.Hasher {
	hasherOnce.Do(func() { defaultHasher = checksum.New(checksum.Config{}) })
	return defaultHasher
}

// ComputeChecksum computes one checksum (HashMD5, HashSHA1, HashSHA256) of
// the binary and stores it in Checksums.
func (p *Process) ComputeChecksum(algo string) {
	p.ComputeChecksums(map[string]uint{algo: 1})
}

// ComputeChecksums computes the checksums of the binary for every algorithm
// in hashes (the values are ignored, as in the seed API), from one read of
// the file opened through /proc/<pid>/exe, RealPath or Path. Checksums is
// replaced by a new map, never written in place, so a map shared with other
// processes is left alone. Errors leave Checksums as it was.
func (p *Process) ComputeChecksums(hashes map[string]uint) {
	algos := make([]string, 0, len(hashes))
	for a := range hashes {
		algos = append(algos, a)
	}
	if p.KernelThread || len(algos) == 0 {
		return
	}
	realPath, _, _ := p.ExeFile()
	t := checksum.Target{PID: p.ID, RealPath: realPath, Path: p.Path}
	if !p.IsAlive() {
		t.PID = 0 // the pid may be another process's now
	}
	res, err := hasher().Sum(context.Background(), t, algos...)
	if err != nil {
		return
	}
	sums := make(map[string]string, len(p.Checksums)+len(res.Digests))
	maps.Copy(sums, p.Checksums)
	maps.Copy(sums, res.Digests)
	p.Checksums = sums
}

// ChecksumsCount returns the number of checksums of the process.
func (p *Process) ChecksumsCount() int {
	return len(p.Checksums)
}

// ResetChecksums clears the checksums.
func (p *Process) ResetChecksums() {
	p.Checksums = make(map[string]string)
}
