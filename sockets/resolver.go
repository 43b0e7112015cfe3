package sockets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/cache"
	"github.com/proctrack/proctrack/internal/exits"
	"github.com/proctrack/proctrack/internal/loop"
	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/internal/sockfds"
	"github.com/proctrack/proctrack/procmon/process"
)

// Defaults of Config.
const (
	DefaultNegativeTTL = 2 * time.Second
	DefaultRevalidate  = 100 * time.Millisecond
	DefaultCleanPeriod = 10 * time.Second
	DefaultMaxAge      = 2 * time.Minute
	DefaultRecentConns = 30 * time.Second
	recentOwnersMax    = 16
	maxRecentConns     = 1 << 16
)

// Errors of Lookup, matched with errors.Is.
var (
	// ErrNotFound: no socket matches the connection.
	ErrNotFound = errors.New("sockets: no socket for this connection")
	// ErrNoOwner: the socket exists but no process holds it (a TIME-WAIT or
	// orphaned socket, inode 0, or an owner that exited past the grace
	// period).
	ErrNoOwner = errors.New("sockets: no process holds this socket")
)

// RecentPIDs is an extension point: the pids an event source saw start or
// exec recently, newest first. A miss scans their fd tables before a full
// /proc scan. A running monitor supplies it.
type RecentPIDs func() []int

// SocketMap is an extension point for an eBPF socket map: the owner of a
// socket inode as the kernel recorded it when the socket was created. It is
// asked first; ok false falls through to the caches and /proc.
type SocketMap interface {
	PIDOfInode(inode uint64) (pid int, ok bool)
}

// ConnMap is an optional interface of a SocketMap: the owner of a connection
// as the kernel recorded it at connect or send time (sockets/ebpf's Map
// implements it). When a connection's socket is gone (a short-lived client
// that exited before its packet was inspected) Lookup asks it before giving
// up, and names the owner from the process cache with no /proc scan.
type ConnMap interface {
	Lookup(proto Proto, src, dst netip.AddrPort) (pid int, startTicks uint64, ok bool)
}

// Config configures a Resolver. Zero fields take the defaults.
type Config struct {
	// Cache is the process cache processes are taken from and added to;
	// nil means a private cache.New(cache.Config{}). An owner that exited
	// is named while this cache still holds it (its grace period).
	Cache *cache.EventsStore
	// NegativeTTL is how long an inode no scan found is reported unknown
	// without scanning again (DefaultNegativeTTL).
	NegativeTTL time.Duration
	// Revalidate is how long a cached inode -> (pid, fd) entry's fd is
	// trusted after it was last confirmed; an older entry costs one readlink
	// of /proc/<pid>/fd/<n> on its next hit (DefaultRevalidate). Negative
	// means every hit is confirmed. That the pid still names the owner is
	// checked on every hit, whatever Revalidate.
	Revalidate time.Duration
	// CleanPeriod is how often Start's cleaner drops expired entries.
	CleanPeriod time.Duration
	// MaxAge drops inode entries not confirmed for this long.
	MaxAge time.Duration
	// RecentConns is how long Lookup remembers a connection's owner, so a
	// connection whose socket closed with its owner is still named.
	RecentConns time.Duration
	// MinScanInterval bounds how often misses may run a full /proc scan: a
	// miss within MinScanInterval of the last full scan's start goes to the
	// negative cache without scanning. 0 (the default) lets every miss of a
	// new inode scan, which names sockets created since the last scan at
	// once; a bound caps the cost of a flood of distinct unknown inodes
	// (and whoowns uses one for sockets no process holds).
	MinScanInterval time.Duration
	// RecentPIDs and SocketMap are the extension points described above.
	RecentPIDs RecentPIDs
	SocketMap  SocketMap
	// ProcRoot is the procfs mount point (/proc).
	ProcRoot string
	// NoExitCounter makes every hit confirm its owner's pid from /proc
	// (one statx). Otherwise the Resolver holds the kernel's exit counter
	// (internal/exits: a BPF program counting exits per pid slot) from its
	// first lookup until Close, where it can load and ProcRoot is /proc: a
	// hit whose owner's pid slot saw no exit since the owner was confirmed
	// running costs no system call.
	NoExitCounter bool
	// NoSocketIterator makes full scans read /proc/<pid>/fd (one readlink
	// per descriptor). Otherwise the Resolver lists every socket
	// descriptor with a BPF iterator (internal/sockfds: iter/task_file,
	// a few ms where /proc takes 60-100 ms) from its first full scan until
	// Close, where it can load and ProcRoot is /proc.
	NoSocketIterator bool
}

type inodeEntry struct {
	owner
	start   uint64        // the pid's start ticks at scan time (0 unknown)
	ident   atomic.Uint64 // procfs.DirIno of the pid, read before its fd table
	gen     atomic.Uint64 // the exit counter's value when the owner was confirmed running (0 unknown)
	checked atomic.Int64
}

type connKey struct {
	proto    Proto
	src, dst netip.AddrPort
}

type connEntry struct {
	info SocketInfo
	key  process.Key
	at   int64
}

// Stats are a Resolver's counters.
type Stats struct {
	Inodes       int    // socket inodes cached
	Negative     int    // inodes in the negative cache
	Hits         uint64 // lookups answered from the inode cache
	Validations  uint64 // readlinks made to confirm a hit
	Stale        uint64 // cached entries found wrong (fd closed, pid reused)
	PartialScans uint64 // scans of recent owners' and recent pids' fd tables
	FullScans    uint64 // full /proc scans
	NegativeHits uint64 // lookups answered by the negative cache
	Misses       uint64 // lookups that found no owner
}

// Resolver names the process behind a socket inode or a connection. It is
// safe for concurrent use. Create it with New.
type Resolver struct {
	cfg   Config
	store *cache.EventsStore
	diag  diag

	mu       sync.RWMutex
	inodes   map[uint64]*inodeEntry
	negative map[uint64]int64 // inode -> expiry (unix ns)
	owners   []int            // recent socket owners, newest first
	conns    map[connKey]connEntry

	scanMu   sync.Mutex // one scan at a time; guards scanner and lastDone (held by a full scan until it ends, even after its miss was answered)
	scanner  *scanner
	scanGen  atomic.Uint64 // full scans started
	lastDone uint64        // the latest full scan whose results are cached (0 after Forget)
	lastFull atomic.Int64  // start of the last full scan (unix ns)

	hits, validations, stale, partial, full, negHits, misses atomic.Uint64

	run    loop.Runner
	closed atomic.Bool // set once the Runner has stopped or Close was called

	counterMu    sync.Mutex
	counterTried atomic.Bool                   // the first lookup tried to open the exit counter (or Close ran)
	counter      atomic.Pointer[exits.Counter] // the exit counter, nil when not held
	listerTried  bool                          // guarded by counterMu: the first full scan tried to open the iterator (or Close ran)
	iter         *sockfds.Lister               // guarded by counterMu
}

// ErrClosed is matched by the errors of a Resolver's lookups once it is
// closed (Close was called, or its Start context ended), and of Start then.
var ErrClosed = loop.ErrClosed

// New returns a Resolver. It starts nothing: Start runs the cleaner.
func New(cfg Config) *Resolver {
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.Revalidate == 0 {
		cfg.Revalidate = DefaultRevalidate
	}
	if cfg.CleanPeriod <= 0 {
		cfg.CleanPeriod = DefaultCleanPeriod
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.RecentConns <= 0 {
		cfg.RecentConns = DefaultRecentConns
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = procfs.DefaultRoot
	}
	st := cfg.Cache
	if st == nil {
		st = cache.New(cache.Config{})
	}
	return &Resolver{
		cfg:      cfg,
		store:    st,
		inodes:   make(map[uint64]*inodeEntry),
		negative: make(map[uint64]int64),
		conns:    make(map[connKey]connEntry),
		scanner:  newScanner(cfg.ProcRoot),
	}
}

// Cache returns the process cache the Resolver uses.
func (r *Resolver) Cache() *cache.EventsStore { return r.store }

// Start runs the cleaner (Clean every CleanPeriod) until ctx ends or Close
// is called, whichever comes first; the Resolver is then closed as by
// Close. A Resolver is started at most once: Start then returns an error
// matching ErrClosed (or loop's "already started" while it runs).
// A Resolver works without Start, only its caches then grow until Clean.
func (r *Resolver) Start(ctx context.Context) error {
	return r.start(ctx)
}

// start runs the cleaner and more, in the Runner's goroutines.
func (r *Resolver) start(ctx context.Context, more ...func(ctx context.Context)) error {
	cleaner := func(ctx context.Context) { loop.Every(ctx, r.cfg.CleanPeriod, r.Clean) }
	if err := r.run.Start(ctx, r.shut, append(more, cleaner)...); err != nil {
		return fmt.Errorf("sockets: resolver: %w", err)
	}
	return nil
}

// shut marks the Resolver closed and closes the sock_diag socket.
func (r *Resolver) shut() {
	r.closed.Store(true)
	r.releaseCounter()
	if err := r.diag.shut(); err != nil {
		slog.Warn("sockets: close sock_diag", "err", err)
	}
}

// Close stops the cleaner, waits for it and for a full scan still running
// (see fullScan), and closes the sock_diag socket.
// Later lookups return errors matching ErrClosed (Owner and PIDOfInode
// find nothing) and open nothing. Close may be called more than once.
func (r *Resolver) Close() error {
	_ = r.run.Close()
	r.closed.Store(true)
	r.waitScan()
	r.releaseCounter()
	return r.diag.shut()
}

// exitCounter returns the exit counter, opening it on the first call (see
// Config.NoExitCounter); nil when it is not used or cannot run.
func (r *Resolver) exitCounter() *exits.Counter {
	if r.counterTried.Load() {
		return r.counter.Load()
	}
	r.counterMu.Lock()
	defer r.counterMu.Unlock()
	if r.counterTried.Swap(true) || r.cfg.NoExitCounter || r.cfg.ProcRoot != procfs.DefaultRoot || r.closed.Load() {
		return r.counter.Load()
	}
	c := exits.New()
	if err := c.Start(context.Background()); err != nil {
		slog.Debug("sockets: hits confirm their owner with a statx", "err", err)
		return nil
	}
	r.counter.Store(c)
	return c
}

// lister returns the socket iterator, opening it on the first call (see
// Config.NoSocketIterator); nil when it is not used or cannot run. It is
// called under the scan lock, and Close waits for scans before it closes
// the iterator.
func (r *Resolver) lister() *sockfds.Lister {
	r.counterMu.Lock()
	defer r.counterMu.Unlock()
	if r.listerTried {
		return r.iter
	}
	r.listerTried = true
	if r.cfg.NoSocketIterator || r.cfg.ProcRoot != procfs.DefaultRoot || r.closed.Load() {
		return nil
	}
	l, err := sockfds.Open()
	if err != nil {
		slog.Debug("sockets: full scans read /proc", "err", err)
		return nil
	}
	r.iter = l
	return l
}

// releaseCounter closes the exit counter and the socket iterator; neither
// is opened afterwards.
func (r *Resolver) releaseCounter() {
	r.counterMu.Lock()
	r.counterTried.Store(true)
	r.listerTried = true
	c := r.counter.Swap(nil)
	l := r.iter
	r.iter = nil
	r.counterMu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	if l != nil {
		_ = l.Close()
	}
}

// Clean drops expired negative entries, inode entries not confirmed for
// MaxAge and remembered connections older than RecentConns.
func (r *Resolver) Clean() {
	now, t := time.Now().UnixNano(), tick()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ino, exp := range r.negative {
		if t > exp {
			delete(r.negative, ino)
		}
	}
	for ino, e := range r.inodes {
		if t-e.checked.Load() > int64(r.cfg.MaxAge) {
			delete(r.inodes, ino)
		}
	}
	for k, c := range r.conns {
		if now-c.at > int64(r.cfg.RecentConns) {
			delete(r.conns, k)
		}
	}
}

// Stats returns the Resolver's counters.
func (r *Resolver) Stats() Stats {
	r.mu.RLock()
	s := Stats{Inodes: len(r.inodes), Negative: len(r.negative)}
	r.mu.RUnlock()
	s.Hits, s.Validations, s.Stale = r.hits.Load(), r.validations.Load(), r.stale.Load()
	s.PartialScans, s.FullScans = r.partial.Load(), r.full.Load()
	s.NegativeHits, s.Misses = r.negHits.Load(), r.misses.Load()
	return s
}

// Refresh runs a full scan now, replacing the inode cache with every socket
// the fd tables hold (as a miss does).
func (r *Resolver) Refresh() {
	r.scanMu.Lock()
	r.lastFull.Store(0)
	r.scanMu.Unlock()
	r.fullScan(r.scanGen.Load(), 0)
}

// Forget empties the inode, negative and connection caches (a cold start).
func (r *Resolver) Forget() {
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	r.lastDone = 0
	r.mu.Lock()
	r.inodes = make(map[uint64]*inodeEntry)
	r.negative = make(map[uint64]int64)
	r.conns = make(map[connKey]connEntry)
	r.owners = nil
	r.mu.Unlock()
	r.lastFull.Store(0)
}

// found is the answer of resolve.
type found struct {
	owner
	start  uint64
	exited bool
	reused bool // exited, and the pid now names another process
}

// PIDOfInode returns the pid of a process holding socket inode (one of
// them when the socket is shared), or ok false. An owner that exited is
// returned while the process cache holds it and no other process has
// taken its pid: a reused pid is a miss, never the new process. See the
// package doc for the lookup order and its costs.
func (r *Resolver) PIDOfInode(inode uint64) (pid int, ok bool) {
	f, ok := r.resolve(inode)
	if !ok || f.reused {
		return 0, false
	}
	return int(f.pid), true
}

// resolve runs the lookup order; a closed Resolver finds nothing.
func (r *Resolver) resolve(inode uint64) (found, bool) { return r.resolveAt(inode, tick()) }

// resolveAt is resolve at now (tick).
func (r *Resolver) resolveAt(inode uint64, now int64) (found, bool) {
	if inode == 0 || r.closed.Load() {
		return found{}, false
	}
	r.exitCounter()
	if m := r.cfg.SocketMap; m != nil {
		if pid, ok := m.PIDOfInode(inode); ok {
			return found{owner: owner{pid: int32(pid), tid: int32(pid), fd: -1}}, true
		}
	}
	gen := r.scanGen.Load()
	r.mu.RLock()
	exp, neg := r.negative[inode]
	e := r.inodes[inode]
	r.mu.RUnlock()
	if neg && now < exp {
		r.negHits.Add(1)
		return found{}, false
	}
	if e != nil {
		if f, ok := r.check(inode, e, now); ok {
			r.hits.Add(1)
			return f, true
		}
	}
	// The pid/fd cache and the event source's recent pids.
	if pids := r.partialPIDs(); len(pids) > 0 {
		r.partial.Add(1)
		if e := r.scan(pids, false)[inode]; e != nil {
			return found{owner: e.owner, start: e.start}, true
		}
	}
	if f, ok := r.fullScan(gen, inode); ok {
		return f, true
	}
	r.misses.Add(1)
	r.mu.Lock()
	r.negative[inode] = tick() + int64(r.cfg.NegativeTTL)
	r.mu.Unlock()
	return found{}, false
}

// cached returns the cache's entry for inode as a scan left it.
func (r *Resolver) cached(inode uint64) (found, bool) {
	r.mu.RLock()
	e := r.inodes[inode]
	r.mu.RUnlock()
	if e == nil {
		return found{}, false
	}
	return found{owner: e.owner, start: e.start}, true
}

// check validates a cached entry. Every hit first checks that the pid still
// names the process the scan saw: with the exit counter, no exit in the
// pid's slot since the owner was confirmed running (no system call);
// otherwise its /proc directory's inode (one statx), after which the
// counter's value is recorded again (one read of /proc/<pid>/stat). A pid
// reused since is never answered as the socket's owner. A hit then
// confirmed within Revalidate is returned as is; an older one costs one
// readlink of /proc/<tid>/fd/<n>. A gone owner is answered (exited) while
// the process cache holds it, marked reused when its pid names another
// process now.
func (r *Resolver) check(inode uint64, e *inodeEntry, now int64) (found, bool) { // now: tick()
	f := found{owner: e.owner, start: e.start}
	trusted := r.cfg.Revalidate > 0 && now-e.checked.Load() < int64(r.cfg.Revalidate)
	var gen uint64
	ec := r.counter.Load()
	if ec != nil {
		gen = ec.Gen(int(e.pid))
	}
	var ident uint64
	var ierr error
	same := gen != 0 && gen == e.gen.Load()
	if same {
		if trusted {
			return f, true
		}
		ident = e.ident.Load()
	} else {
		ident, ierr = procfs.DirIno(r.cfg.ProcRoot, int(e.pid))
		same = ierr == nil && ident == e.ident.Load()
		if same && gen != 0 {
			// The directory is the scan's: the process the scan saw, so its
			// start time, read now, must show it running and not exiting.
			if g := ec.Confirm(int(e.pid), e.start); g != 0 {
				e.gen.Store(g)
			}
		}
		if same && trusted {
			return f, true
		}
	}
	r.validations.Add(1)
	k := process.Key{PID: int(e.pid), StartTicks: e.start}
	var buf [64]byte
	n, err := unix.Readlink(r.cfg.ProcRoot+"/"+strconv.Itoa(int(e.tid))+"/fd/"+strconv.Itoa(int(e.fd)), buf[:])
	if err == nil {
		if ino, ok := parseSocketLink(buf[:n]); ok && ino == inode {
			if same {
				e.checked.Store(now)
				return f, true
			}
			// The pid holds the socket, but its directory changed: the
			// process the scan saw only if its start time is the same (the
			// kernel can remake a live process's /proc inode). Read before
			// the start time, ident is then that process's.
			if cur, err := process.CurrentKey(int(e.pid)); err == nil && e.start != 0 && cur == k {
				if ierr == nil {
					e.ident.Store(ident)
				}
				e.checked.Store(now)
				return f, true
			}
			r.drop(inode, e) // another process on the pid: a scan names it
			return found{}, false
		}
	}
	// Gone, or the fd closed? Only a gone owner may be answered.
	if e.start != 0 {
		if cur, err := process.CurrentKey(int(e.pid)); err != nil || cur != k {
			if it, ok := r.store.Get(k); ok {
				wall := time.Now().UnixNano() // the cache's clock
				if it.Exited == 0 {
					r.store.Exit(k)
					it.Exited = wall
				}
				if wall-it.Exited <= int64(it.TTL)*int64(time.Second) {
					f.exited = true
					f.reused = cur.StartTicks != 0 && cur != k
					return f, true
				}
			}
		}
	}
	r.drop(inode, e)
	return found{}, false
}

func (r *Resolver) drop(inode uint64, e *inodeEntry) {
	r.stale.Add(1)
	r.mu.Lock()
	if r.inodes[inode] == e {
		delete(r.inodes, inode)
	}
	r.mu.Unlock()
}

// partialPIDs returns the recent socket owners and the event source's
// recent pids.
func (r *Resolver) partialPIDs() []int {
	r.mu.RLock()
	pids := append([]int(nil), r.owners...)
	r.mu.RUnlock()
	if r.cfg.RecentPIDs != nil {
		pids = append(pids, r.cfg.RecentPIDs()...)
	}
	return pids
}

// fullScan scans every process unless a scan that started after the miss
// read gen (scanGen) has completed: a concurrent miss already did the work.
// It reports inode's owner as the cache holds it after the scan (or the
// skipped scan): under the scan lock, so Forget cannot interleave.
//
// The scan reads the newest processes (the highest pids) first, where the
// owner of a new socket is likely to be, and answers as soon as it sees
// inode (its owner's start time read and the pid confirmed unchanged); the
// scan goes on in the background, holding the scan lock, until the inode
// cache holds every socket as before, so that a burst of distinct new
// inodes still costs one scan. Close waits for it.
func (r *Resolver) fullScan(gen, inode uint64) (found, bool) {
	r.scanMu.Lock()
	if r.lastDone > gen {
		defer r.scanMu.Unlock()
		return r.cached(inode)
	}
	r.mu.RLock()
	e := r.inodes[inode]
	r.mu.RUnlock()
	if e != nil {
		// A scan that was running at the miss (it answered another miss
		// early) has put it there since: checked as any hit (a failed
		// check drops it, and the next try scans).
		r.scanMu.Unlock()
		if f, ok := r.check(inode, e, tick()); ok {
			return f, true
		}
		return r.fullScan(r.scanGen.Load(), inode)
	}
	start := time.Now().UnixNano()
	if last := r.lastFull.Load(); last != 0 && start-last < int64(r.cfg.MinScanInterval) {
		defer r.scanMu.Unlock()
		return r.cached(inode)
	}
	r.lastFull.Store(start)
	pids, err := procfs.PIDs(r.cfg.ProcRoot)
	if err != nil {
		r.scanMu.Unlock()
		return found{}, false
	}
	slices.Reverse(pids) // newest first
	r.full.Add(1)
	n := r.scanGen.Add(1)
	type result struct {
		f  found
		ok bool
	}
	early, done := make(chan found, 1), make(chan result, 1)
	go func() {
		defer r.scanMu.Unlock()
		r.scanLocked(pids, true, inode, early)
		r.lastDone = n
		f, ok := r.cached(inode)
		done <- result{f, ok}
	}()
	select {
	case f := <-early:
		return f, true
	case res := <-done:
		return res.f, res.ok
	}
}

// waitScan returns once no scan runs (a full scan holds the scan lock
// until it ends).
func (r *Resolver) waitScan() {
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
}

// scan scans pids' fd tables (taking the scan lock) and returns what it saw.
func (r *Resolver) scan(pids []int, replace bool) map[uint64]*inodeEntry {
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	return r.scanLocked(pids, replace, 0, nil)
}

// earlyAnswer sends on early, once, the owner o of the socket a scan is
// looking for, with its start time, if pid (whose /proc directory had the
// inode number ident before its fd table was read) still names the same
// process after the start time is read; otherwise the scan's end answers.
// It returns the start time it sent (0 if none), which the scan keeps: the
// owner may exit before the scan reads the start times.
func (r *Resolver) earlyAnswer(once *sync.Once, early chan<- found, o owner, ident uint64) (start uint64) {
	once.Do(func() {
		s, _, err := procfs.ReadStat(r.cfg.ProcRoot, int(o.pid))
		if err != nil || ident == 0 {
			return
		}
		if now, err := procfs.DirIno(r.cfg.ProcRoot, int(o.pid)); err != nil || now != ident {
			return
		}
		start = s.StartTicks
		early <- found{owner: o, start: start}
	})
	return start
}

// scanWorkers bounds the goroutines of one scan.
var scanWorkers = min(runtime.GOMAXPROCS(0), 4)

// scanLocked records every socket the fd tables of pids hold. With replace
// (a full scan) the inode cache becomes what the scan saw, plus the entries
// of owners that exited and are still in the process cache (their grace
// period). Large scans are split among up to scanWorkers goroutines. With
// early, the first sight of socket want is answered there at once
// (earlyAnswer) while the scan goes on.
func (r *Resolver) scanLocked(pids []int, replace bool, want uint64, early chan<- found) map[uint64]*inodeEntry {
	var seen map[uint64]*inodeEntry
	if l := r.lister(); replace && l != nil {
		seen = r.iterate(l, pids, want, early)
	}
	if seen == nil {
		seen = r.readFDs(pids, want, early)
	}
	return r.record(seen, pids, replace)
}

// readFDs reads pids' fd tables from /proc, one readlink per descriptor.
// Large scans are split among up to scanWorkers goroutines.
func (r *Resolver) readFDs(pids []int, want uint64, early chan<- found) map[uint64]*inodeEntry {
	now := tick()
	ec := r.counter.Load()
	var earlyOnce sync.Once
	workers := 1
	if len(pids) >= 64 {
		workers = scanWorkers
	}
	parts := make([]map[uint64]*inodeEntry, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		sc := r.scanner
		if w > 0 {
			sc = newScanner(r.cfg.ProcRoot)
		}
		seen := make(map[uint64]*inodeEntry, 256)
		parts[w] = seen
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs := make(map[int32]*scanned)
			for i := w; i < len(pids); i += workers {
				// The exit counter's value, then the directory's inode
				// before the fd table: while the inode is unchanged, the
				// process is the one whose sockets were read.
				var gen uint64
				if ec != nil {
					gen = ec.Gen(pids[i])
				}
				ident, _ := procfs.DirIno(r.cfg.ProcRoot, pids[i])
				sc.pid(pids[i], func(ino uint64, o owner) {
					p := procs[o.pid]
					if p == nil {
						p = &scanned{ident: ident, gen: gen}
					}
					r.add(seen, procs, ino, o, p, now, want, early, &earlyOnce)
				})
			}
			r.stamp(seen, procs)
		}()
	}
	wg.Wait()
	seen := parts[0]
	for _, p := range parts[1:] {
		for ino, e := range p {
			if _, dup := seen[ino]; !dup {
				seen[ino] = e
			}
		}
	}
	return seen
}

// iterate lists every socket descriptor with the BPF iterator
// (internal/sockfds), as readFDs would find them in pids' fd tables: the
// exit counter's value and each pid's /proc inode are read first, for all
// of pids, then the listing, then the start times (scanned.learn). It
// returns nil when the iterator fails (readFDs then scans).
func (r *Resolver) iterate(l *sockfds.Lister, pids []int, want uint64, early chan<- found) map[uint64]*inodeEntry {
	now := tick()
	ec := r.counter.Load()
	before := make(map[int32]*scanned, len(pids))
	for _, pid := range pids {
		p := &scanned{}
		if ec != nil {
			p.gen = ec.Gen(pid)
		}
		p.ident, _ = procfs.DirIno(r.cfg.ProcRoot, pid)
		before[int32(pid)] = p
	}
	seen := make(map[uint64]*inodeEntry, 1024)
	procs := make(map[int32]*scanned)
	var earlyOnce sync.Once
	err := l.Each(func(s sockfds.SockFD) {
		p := before[s.PID]
		if p == nil { // born after the listing of /proc: not identified
			p = &scanned{}
			before[s.PID] = p
		}
		r.add(seen, procs, s.Inode, owner{pid: s.PID, tid: s.TID, fd: s.FD}, p, now, want, early, &earlyOnce)
	})
	if err != nil {
		slog.Debug("sockets: the socket iterator failed; scanning /proc", "err", err)
		return nil
	}
	r.stamp(seen, procs)
	return seen
}

// add records in seen that o owns the socket ino, unless a descriptor
// listed earlier in the scan owns it; p is
// o's process as scanned, kept in procs then. The socket asked for (want)
// is answered at once (earlyAnswer).
func (r *Resolver) add(seen map[uint64]*inodeEntry, procs map[int32]*scanned, ino uint64, o owner, p *scanned, now int64, want uint64, early chan<- found, once *sync.Once) {
	if _, dup := seen[ino]; dup {
		return
	}
	e := &inodeEntry{owner: o}
	e.ident.Store(p.ident)
	e.checked.Store(now)
	seen[ino] = e
	procs[o.pid] = p
	if ino == want && early != nil {
		if st := r.earlyAnswer(once, early, o, p.ident); st != 0 {
			p.start = st
		}
	}
}

// stamp reads the start time of each process in procs (scanned.learn) and
// gives every entry of seen its owner's start time and exit count.
func (r *Resolver) stamp(seen map[uint64]*inodeEntry, procs map[int32]*scanned) {
	for pid, p := range procs {
		p.learn(r.cfg.ProcRoot, int(pid))
	}
	for _, e := range seen {
		p := procs[e.pid]
		e.start = p.start
		e.gen.Store(p.gen)
	}
}

// record puts what a scan saw into the inode cache: with replace (a full
// scan of pids) the cache becomes what the scan saw, plus the entries of
// owners that exited and are still in the process cache (their grace
// period).
func (r *Resolver) record(seen map[uint64]*inodeEntry, pids []int, replace bool) map[uint64]*inodeEntry {
	var alive map[int]bool
	if replace {
		alive = make(map[int]bool, len(pids))
		for _, pid := range pids {
			alive[pid] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if replace {
		old := r.inodes
		r.inodes = seen
		for ino, e := range old {
			if _, ok := seen[ino]; ok || alive[int(e.pid)] || e.start == 0 {
				continue
			}
			if _, ok := r.store.Get(process.Key{PID: int(e.pid), StartTicks: e.start}); ok {
				seen[ino] = e // an exited owner, still answerable
			}
		}
	} else {
		for ino, e := range seen {
			r.inodes[ino] = e
		}
	}
	for ino := range seen {
		delete(r.negative, ino)
	}
	return seen
}

// clockBase is the origin of tick.
var clockBase = time.Now()

// tick is the Resolver's clock for entries' confirmation times and the
// negative cache's expiry: nanoseconds on the monotonic clock, which costs
// half of time.Now (one clock read instead of two).
func tick() int64 { return int64(time.Since(clockBase)) }

// scanned is what a scan learns of a process whose fd table holds sockets.
type scanned struct {
	ident uint64 // procfs.DirIno, read before the fd table
	gen   uint64 // the exit counter's value, read before ident (0 none)
	start uint64
}

// learn reads the process's start time. The exit counter's value is kept
// only if the process was then running and not exiting and is the one
// whose fd table was read (its directory's inode unchanged after the read
// of its stat): exits.Confirm's rule.
func (p *scanned) learn(root string, pid int) {
	s, _, err := procfs.ReadStat(root, pid)
	if err != nil {
		p.gen = 0 // keep an early answer's start: the owner may have exited since
		return
	}
	p.start = s.StartTicks
	if p.gen != 0 && !exits.Running(s, s.StartTicks) {
		p.gen = 0
	}
	if p.gen != 0 {
		if ident, err := procfs.DirIno(root, pid); err != nil || ident != p.ident || ident == 0 {
			p.gen = 0
		}
	}
}

// noteOwner records pid as a recent socket owner (scanned first on a miss).
func (r *Resolver) noteOwner(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, p := range r.owners {
		if p == pid {
			copy(r.owners[1:i+1], r.owners[:i])
			r.owners[0] = pid
			return
		}
	}
	if len(r.owners) < recentOwnersMax {
		r.owners = append(r.owners, 0)
	}
	copy(r.owners[1:], r.owners)
	r.owners[0] = pid
}

// processOf returns the process for a resolved owner, from the process
// cache or read from /proc (and then cached).
func (r *Resolver) processOf(f found) (*process.Process, error) {
	pid := int(f.pid)
	if f.start != 0 {
		if it, ok := r.store.Get(process.Key{PID: pid, StartTicks: f.start}); ok {
			return it.Proc, nil
		}
	} else if it, ok := r.store.IsInStoreByPID(pid); ok {
		return it.Proc, nil
	}
	if f.exited {
		return nil, fmt.Errorf("%w: pid %d exited", ErrNoOwner, pid)
	}
	p := process.ReadProcess(pid)
	if p == nil || (f.start != 0 && uint64(p.Starttime) != f.start) {
		return nil, fmt.Errorf("%w: pid %d: %w", ErrNoOwner, pid, process.ErrGone)
	}
	return r.store.Put(p), nil
}
