package checksum

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Algorithm names. They are the keys of a process's Checksums map in
// OpenSnitch's procmon and the keys of [Result.Digests].
const (
	// HashMD5 selects the MD5 digest.
	HashMD5 = "process.hash.md5"
	// HashSHA1 selects the SHA-1 digest.
	HashSHA1 = "process.hash.sha1"
	// HashSHA256 selects the SHA-256 digest.
	HashSHA256 = "process.hash.sha256"
)

// Defaults used by [New] for zero [Config] fields.
const (
	// DefaultMaxFileSize is the largest file hashed when Config.MaxFileSize is 0.
	DefaultMaxFileSize int64 = 256 << 20
	// DefaultMaxConcurrent is the number of files hashed at once when
	// Config.MaxConcurrent is 0.
	DefaultMaxConcurrent = 2
	// DefaultCacheEntries is the cache bound when Config.CacheEntries is 0.
	DefaultCacheEntries = 4096
	// DefaultProcRoot is where procfs is looked for when Config.ProcRoot is empty.
	DefaultProcRoot = "/proc"
	// IMAPathIntegrity is the location of the IMA ASCII measurement list on
	// current kernels; it is the first default tried for Config.IMAPath.
	IMAPathIntegrity = "/sys/kernel/security/integrity/ima/ascii_runtime_measurements"
	// IMAPathLegacy is the older location of the IMA ASCII measurement list;
	// it is the second default tried for Config.IMAPath.
	IMAPathLegacy = "/sys/kernel/security/ima/ascii_runtime_measurements"
)

// Sentinel errors. Errors returned by this package wrap them, so test with
// [errors.Is].
var (
	// ErrTooLarge reports a file bigger than Config.MaxFileSize.
	ErrTooLarge = errors.New("checksum: file too large")
	// ErrUnknownAlgorithm reports an algorithm name that is not one of
	// HashMD5, HashSHA1 or HashSHA256.
	ErrUnknownAlgorithm = errors.New("checksum: unknown algorithm")
	// ErrNoFile reports that no candidate yielded a file that could be
	// hashed: the process is gone (or its exe is not accessible) and none of
	// the paths works. The error also wraps each candidate's own error, so
	// errors.Is can match e.g. ErrNotRegular, ErrSymlink or fs.ErrNotExist.
	ErrNoFile = errors.New("checksum: no file to hash")
	// ErrNotRegular reports a path that names something other than a
	// regular file (a directory, device, FIFO, socket).
	ErrNotRegular = errors.New("checksum: not a regular file")
	// ErrSymlink reports a path containing a symbolic link, which is never
	// followed for Target.RealPath, Target.Path or SumFile paths.
	ErrSymlink = errors.New("checksum: refusing to follow symbolic link")
	// ErrMismatch reports a fallback path whose device and inode differ from
	// those of the process's /proc/<pid>/exe.
	ErrMismatch = errors.New("checksum: file is not the process executable")
	// ErrFileChanged reports a file that kept changing while it was read.
	ErrFileChanged = errors.New("checksum: file changed while being hashed")
)

// algorithm bit masks, in the order of algoNames.
type algoMask uint8

const (
	maskMD5 algoMask = 1 << iota
	maskSHA1
	maskSHA256

	maskAll = maskMD5 | maskSHA1 | maskSHA256
	nAlgos  = 3
)

// algoName returns the constant for algorithm index i.
func algoName(i int) string {
	switch i {
	case 0:
		return HashMD5
	case 1:
		return HashSHA1
	default:
		return HashSHA256
	}
}

func newAlgo(i int) hash.Hash {
	switch i {
	case 0:
		return md5.New()
	case 1:
		return sha1.New()
	default:
		return sha256.New()
	}
}

// SupportedAlgorithms returns the algorithm names a [Hasher] accepts.
func SupportedAlgorithms() []string {
	return []string{HashMD5, HashSHA1, HashSHA256}
}

// parseAlgos maps algorithm names to a mask. No names means all algorithms.
func parseAlgos(algos []string) (algoMask, error) {
	if len(algos) == 0 {
		return maskAll, nil
	}
	var m algoMask
	for _, a := range algos {
		switch a {
		case HashMD5:
			m |= maskMD5
		case HashSHA1:
			m |= maskSHA1
		case HashSHA256:
			m |= maskSHA256
		default:
			return 0, fmt.Errorf("%w: %q", ErrUnknownAlgorithm, a)
		}
	}
	return m, nil
}

// Config configures a [Hasher]. The zero value selects the defaults.
type Config struct {
	// MaxFileSize is the largest file, in bytes, that is hashed; larger
	// files are refused with ErrTooLarge. 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// MaxConcurrent bounds the number of files read at the same time;
	// further callers wait (until their context is done). 0 means
	// DefaultMaxConcurrent.
	MaxConcurrent int
	// CacheEntries bounds the number of cached results (least recently
	// used entries are evicted). 0 means DefaultCacheEntries.
	CacheEntries int
	// ProcRoot is the procfs mount point used for /proc/<pid>/exe and
	// /proc/<pid>/root. Empty means DefaultProcRoot. (Verified O_PATH
	// descriptors are always reopened through the hasher's own
	// /proc/self/fd, so procfs must be mounted at /proc as well.)
	ProcRoot string
	// IMAPath is the IMA ASCII measurement list. Empty means the first
	// existing of IMAPathIntegrity and IMAPathLegacy at New time; when
	// neither exists, IMA lookups are disabled.
	IMAPath string
}

// Target says which file to hash for a process. /proc/<PID>/exe is tried
// first (when PID > 0), then RealPath, then Path. Empty fields are skipped.
type Target struct {
	// PID is the process ID; 0 means no process (only the paths are used).
	PID int
	// RealPath is the resolved executable path, for example the target of
	// /proc/<pid>/exe read earlier, or /proc/<pid>/root/<path> to resolve
	// <path> inside the process's root directory.
	RealPath string
	// Path is the executable path as reported by the process (for example
	// from its command line).
	Path string
}

// Result is the outcome of hashing one file.
type Result struct {
	// Digests maps each requested algorithm constant to its lowercase hex
	// digest. The map belongs to the caller.
	Digests map[string]string
	// Source is the path that was opened, e.g. "/proc/123/exe" or the
	// RealPath.
	Source string
	// Dev is the device number of the file.
	Dev uint64
	// Inode is the inode number of the file.
	Inode uint64
	// Size is the file size in bytes.
	Size int64
	// ModTime is the file's modification time.
	ModTime time.Time
	// IMA is the digest recorded in the IMA measurement list for this file;
	// nil when IMA is inactive or has no entry for it.
	IMA *IMADigest
	// Cached is true when the digests were served from the cache without
	// reading the file.
	Cached bool
}

// Stats are cumulative counters of a [Hasher].
type Stats struct {
	// Hashed counts files read and hashed.
	Hashed uint64
	// CacheHits counts requests answered from the cache.
	CacheHits uint64
	// BytesRead counts bytes read from files while hashing.
	BytesRead uint64
	// TooLarge counts requests refused with ErrTooLarge.
	TooLarge uint64
	// Errors counts requests that failed for any other reason (including
	// context cancellation).
	Errors uint64
}

// Hasher computes and caches digests of executables. It is safe for
// concurrent use. Create one with [New].
type Hasher struct {
	maxSize  int64
	procRoot string
	sem      chan struct{}
	ima      *IMAList // nil when IMA is disabled

	mu       sync.Mutex // guards cache and inflight
	cache    *lru
	inflight map[fileKey]chan struct{}

	hashed, hits, bytesRead, tooLarge, errs atomic.Uint64

	// Instrumentation and test hooks (never set outside tests).
	active, peak atomic.Int64
	hookHashing  func()       // called while holding a slot, before reading
	hookWait     func(string) // called before blocking: "slot" or "inflight"
	noProcExe    bool         // skip opening /proc/<pid>/exe (still stat it)
	noOpenat2    bool         // behave as if openat2 returned ENOSYS
}

// New returns a Hasher configured by cfg.
func New(cfg Config) *Hasher {
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = DefaultMaxFileSize
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = DefaultCacheEntries
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = DefaultProcRoot
	}
	h := &Hasher{
		maxSize:  cfg.MaxFileSize,
		procRoot: filepath.Clean(cfg.ProcRoot),
		sem:      make(chan struct{}, cfg.MaxConcurrent),
		cache:    newLRU(cfg.CacheEntries),
		inflight: make(map[fileKey]chan struct{}),
	}
	imaPath := cfg.IMAPath
	if imaPath == "" {
		for _, p := range []string{IMAPathIntegrity, IMAPathLegacy} {
			if _, err := os.Stat(p); err == nil {
				imaPath = p
				break
			}
		}
	}
	if imaPath != "" {
		h.ima = NewIMAList(imaPath)
	}
	return h
}

// Stats returns a snapshot of the hasher's counters.
func (h *Hasher) Stats() Stats {
	return Stats{
		Hashed:    h.hashed.Load(),
		CacheHits: h.hits.Load(),
		BytesRead: h.bytesRead.Load(),
		TooLarge:  h.tooLarge.Load(),
		Errors:    h.errs.Load(),
	}
}

// Sum hashes the executable of t with the given algorithms (all supported
// algorithms when none are given). See [Target] for the order in which
// files are tried and the package documentation for the safety rules.
func (h *Hasher) Sum(ctx context.Context, t Target, algos ...string) (*Result, error) {
	res, err := h.sum(ctx, t, algos)
	h.count(err)
	return res, err
}

// SumFile hashes the file at path with the given algorithms (all supported
// algorithms when none are given). The path is opened with the same rules
// as Target.RealPath: no symbolic link is followed anywhere in it, a
// /proc/<pid>/root/ prefix resolves the rest inside that process's root,
// and only regular files are hashed.
func (h *Hasher) SumFile(ctx context.Context, path string, algos ...string) (*Result, error) {
	res, err := h.sum(ctx, Target{RealPath: path}, algos)
	h.count(err)
	return res, err
}

func (h *Hasher) count(err error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrTooLarge):
		h.tooLarge.Add(1)
	default:
		h.errs.Add(1)
	}
}

func (h *Hasher) sum(ctx context.Context, t Target, algos []string) (*Result, error) {
	mask, err := parseAlgos(algos)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	of, err := h.openTarget(t)
	if err != nil {
		return nil, err
	}
	defer of.close()
	res, err := h.hashOpened(ctx, of, mask)
	if err != nil {
		return nil, err
	}
	if h.ima != nil {
		res.IMA = h.lookupIMA(t, of)
	}
	return res, nil
}

// fileKey identifies file contents for the cache. The change time is part
// of the key because, unlike the modification time, it cannot be set by
// users.
type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    int64 // ns
	ctime    int64 // ns
}

func keyOf(st *unix.Stat_t) fileKey {
	return fileKey{
		dev:   uint64(st.Dev),
		ino:   uint64(st.Ino),
		size:  int64(st.Size),
		mtime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)).UnixNano(),
		ctime: time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)).UnixNano(),
	}
}

// maxAttempts bounds how often a file that changes while it is read is
// re-read.
const maxAttempts = 3

// hashOpened returns the digests of the opened file, from the cache when
// possible.
func (h *Hasher) hashOpened(ctx context.Context, of *openFile, mask algoMask) (*Result, error) {
	st := of.st
	changes := 0
	for {
		key := keyOf(&st)
		if key.size > h.maxSize {
			return nil, fmt.Errorf("%w: %s: %d bytes, limit %d", ErrTooLarge, of.source, key.size, h.maxSize)
		}
		res := &Result{
			Source:  of.source,
			Dev:     key.dev,
			Inode:   key.ino,
			Size:    key.size,
			ModTime: time.Unix(0, key.mtime),
		}

		h.mu.Lock()
		var have algoMask
		var known [nAlgos]string
		if e := h.cache.get(key); e != nil {
			have, known = e.mask, e.digests
		}
		if have&mask == mask {
			h.mu.Unlock()
			h.hits.Add(1)
			res.Digests = digestMap(mask, &known)
			res.Cached = true
			return res, nil
		}
		if ch, busy := h.inflight[key]; busy {
			// Someone is reading this file right now; wait for them and
			// look again.
			h.mu.Unlock()
			if h.hookWait != nil {
				h.hookWait("inflight")
			}
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		h.inflight[key] = done
		h.mu.Unlock()

		missing := mask &^ have
		got, err := h.compute(ctx, of, missing)
		var after unix.Stat_t
		stable := false
		if err == nil {
			if err = unix.Fstat(of.fd, &after); err != nil {
				err = fmt.Errorf("checksum: fstat %s: %w", of.source, err)
			} else {
				stable = keyOf(&after) == key && got.n == key.size
			}
		}

		h.mu.Lock()
		delete(h.inflight, key)
		close(done)
		if stable {
			h.cache.merge(key, missing, &got.digests)
		}
		h.mu.Unlock()

		if err != nil {
			return nil, err
		}
		if !stable {
			if changes++; changes >= maxAttempts {
				return nil, fmt.Errorf("%w: %s", ErrFileChanged, of.source)
			}
			st = after
			continue
		}
		h.hashed.Add(1)
		for i := range nAlgos {
			if missing&(1<<i) != 0 {
				known[i] = got.digests[i]
			}
		}
		res.Digests = digestMap(mask, &known)
		return res, nil
	}
}

func digestMap(mask algoMask, d *[nAlgos]string) map[string]string {
	m := make(map[string]string, nAlgos)
	for i := range nAlgos {
		if mask&(1<<i) != 0 {
			m[algoName(i)] = d[i]
		}
	}
	return m
}

// bufSize is the read buffer size.
const bufSize = 64 << 10

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

type computed struct {
	digests [nAlgos]string
	n       int64 // bytes read
}

// compute reads the whole file once, feeding every selected algorithm. It
// holds a concurrency slot but no lock while reading.
func (h *Hasher) compute(ctx context.Context, of *openFile, mask algoMask) (computed, error) {
	var out computed
	select {
	case h.sem <- struct{}{}:
	default:
		if h.hookWait != nil {
			h.hookWait("slot")
		}
		select {
		case h.sem <- struct{}{}:
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	defer func() { <-h.sem }()

	n := h.active.Add(1)
	defer h.active.Add(-1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if h.hookHashing != nil {
		h.hookHashing()
	}

	var hs [nAlgos]hash.Hash
	ws := make([]io.Writer, 0, nAlgos)
	for i := range nAlgos {
		if mask&(1<<i) != 0 {
			hs[i] = newAlgo(i)
			ws = append(ws, hs[i])
		}
	}
	w := io.MultiWriter(ws...)

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			h.bytesRead.Add(uint64(off))
			return out, err
		}
		// pread, so a retry never depends on the file offset.
		k, err := unix.Pread(of.fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if k > 0 {
			w.Write(buf[:k]) // hash.Hash writes never fail
			off += int64(k)
			if off > h.maxSize {
				h.bytesRead.Add(uint64(off))
				return out, fmt.Errorf("%w: %s: grew beyond %d bytes while being read", ErrTooLarge, of.source, h.maxSize)
			}
		}
		if err != nil {
			h.bytesRead.Add(uint64(off))
			return out, fmt.Errorf("checksum: read %s: %w", of.source, err)
		}
		if k == 0 {
			break // end of file
		}
	}
	h.bytesRead.Add(uint64(off))
	for i, hh := range hs {
		if hh != nil {
			out.digests[i] = hex.EncodeToString(hh.Sum(nil))
		}
	}
	out.n = off
	return out, nil
}

// lookupIMA returns the IMA entry for the hashed file, trying the names the
// file is known by. Errors (no IMA, unreadable list) yield nil.
func (h *Hasher) lookupIMA(t Target, of *openFile) *IMADigest {
	var names []string
	if of.procExe {
		if p, err := os.Readlink(of.source); err == nil {
			names = append(names, strings.TrimSuffix(p, " (deleted)"))
		}
	}
	for _, p := range []string{t.RealPath, t.Path} {
		if p == "" {
			continue
		}
		names = append(names, p)
		if _, rest, ok := h.splitProcRoot(p); ok {
			names = append(names, "/"+rest)
		}
	}
	for _, n := range names {
		d, err := h.ima.Lookup(n)
		if err != nil {
			return nil
		}
		if d != nil {
			return d
		}
	}
	return nil
}

// procPath returns <ProcRoot>/<pid>/<name>.
func (h *Hasher) procPath(pid int, name string) string {
	return h.procRoot + "/" + strconv.Itoa(pid) + "/" + name
}
