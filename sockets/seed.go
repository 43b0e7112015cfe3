package sockets

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/proctrack/proctrack/internal/loop"
)

// The seed-compatible API. The package functions use Default(), a Resolver
// created on first use with the default Config (its own process cache
// unless SetDefault installs another).

var (
	defaultMu  sync.Mutex
	defaultRes *Resolver
)

// Default returns the package's Resolver, creating it on first use and
// replacing it, on the same process cache, once it is closed.
func Default() *Resolver {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	switch {
	case defaultRes == nil:
		defaultRes = New(Config{})
	case defaultRes.closed.Load():
		// Closed (CacheCleanerTask's end): a new one on the same cache.
		cfg := defaultRes.cfg
		cfg.Cache = defaultRes.store
		defaultRes = New(cfg)
	}
	return defaultRes
}

// SetDefault replaces the package's Resolver (a monitor installs one on
// its process cache). It does not close the previous one.
func SetDefault(r *Resolver) {
	defaultMu.Lock()
	defaultRes = r
	defaultMu.Unlock()
}

// InodeItem is an entry of CacheInodes: the fd path that held the inode
// and its process.
type InodeItem struct {
	sync.RWMutex
	FdPath   string
	Pid      int
	LastSeen int64
	fd       owner // where FdPath points, as GetPIDFromINode recorded it
}

// ProcItem is an entry of CacheProcs: a process that held sockets, its fd
// directory and the descriptors last seen there.
type ProcItem struct {
	sync.RWMutex
	FdPath      string
	Descriptors []string
	Pid         int
	LastSeen    int64
}

// seenMap is a map of items that record when they were last seen, the
// shape of both seed caches. Its Lock and RLock guard the map.
type seenMap[K comparable, V interface{ seen() int64 }] struct {
	sync.RWMutex
	items map[K]V
}

func (c *seenMap[K, V]) put(k K, v V) {
	c.Lock()
	if c.items == nil {
		c.items = make(map[K]V)
	}
	c.items[k] = v
	c.Unlock()
}

// Get returns the item under key.
func (c *seenMap[K, V]) Get(key K) (V, bool) {
	c.RLock()
	defer c.RUnlock()
	it, ok := c.items[key]
	return it, ok
}

// Delete removes key.
func (c *seenMap[K, V]) Delete(key K) {
	c.Lock()
	delete(c.items, key)
	c.Unlock()
}

// Len returns the number of items.
func (c *seenMap[K, V]) Len() int {
	c.RLock()
	defer c.RUnlock()
	return len(c.items)
}

// DeleteOldItems removes items not seen for maxAge.
func (c *seenMap[K, V]) DeleteOldItems(maxAge time.Duration) {
	lim := time.Now().Add(-maxAge).UnixNano()
	c.Lock()
	defer c.Unlock()
	for k, it := range c.items {
		if it.seen() < lim {
			delete(c.items, k)
		}
	}
}

func (it *InodeItem) seen() int64 {
	it.RLock()
	defer it.RUnlock()
	return it.LastSeen
}

func (it *ProcItem) seen() int64 {
	it.RLock()
	defer it.RUnlock()
	return it.LastSeen
}

// CacheInodes holds inodes looked up by the seed's key,
// inode+srcip+srcport+dstip+dstport, as GetPIDFromINode fills it. Get,
// Delete, Len and DeleteOldItems take that key.
type CacheInodes struct {
	seenMap[string, *InodeItem]
}

// NewCacheOfInodes returns an empty CacheInodes.
func NewCacheOfInodes() *CacheInodes { return &CacheInodes{} }

// Add stores item under key.
func (c *CacheInodes) Add(key string, item *InodeItem) { c.put(key, item) }

// CacheProcs holds the processes that held sockets recently, by pid. Get,
// Delete, Len and DeleteOldItems take the pid.
type CacheProcs struct {
	seenMap[int, *ProcItem]
}

// NewCacheOfProcs returns an empty CacheProcs.
func NewCacheOfProcs() *CacheProcs { return &CacheProcs{} }

// Add stores item under its Pid.
func (c *CacheProcs) Add(item *ProcItem) { c.put(item.Pid, item) }

// The seed's package caches, filled by GetPIDFromINode.
var (
	// InodesCache maps the seed's inode keys to their owners.
	InodesCache = NewCacheOfInodes()
	// PidsCache holds the processes GetPIDFromINode named.
	PidsCache = NewCacheOfProcs()
)

// GetPIDFromINode returns the pid holding socket inode, or -1, by Default's
// lookup order (see the package doc): a cached inode is trusted as the
// Resolver trusts it (the owner's pid confirmed to name the same process,
// with no system call where the exit counter runs; the descriptor trusted
// within Revalidate of its last confirmation). A pid reused since is never
// returned. Hits are recorded in InodesCache under inodeKey (the seed's
// inode+srcip+srcport+dstip+dstport) and in PidsCache, for callers that
// read them; they are no longer consulted first, because an entry there
// could not tell a reused pid.
func GetPIDFromINode(inode int, inodeKey string) int {
	if inode <= 0 {
		return -1
	}
	r := Default()
	t := tick()
	f, ok := r.resolveAt(uint64(inode), t)
	if !ok || f.reused {
		if inodeKey != "" {
			InodesCache.Delete(inodeKey)
		}
		return -1
	}
	if inodeKey != "" && f.fd >= 0 {
		// The seed caches' times are unix nanoseconds: taken from the same
		// clock reading (the monotonic clock drifts from the wall clock far
		// less than the caches' two-minute expiry).
		r.recordSeed(inodeKey, f.owner, clockBase.UnixNano()+t)
	}
	return int(f.pid)
}

// recordSeed records a hit in InodesCache and PidsCache at now (unix
// nanoseconds): a new entry when the key names another descriptor, else
// only LastSeen.
func (r *Resolver) recordSeed(inodeKey string, o owner, now int64) {
	if it, ok := InodesCache.Get(inodeKey); ok {
		it.Lock()
		if it.Pid == int(o.pid) && it.fd == o {
			it.LastSeen = now
			it.Unlock()
			return
		}
		it.Unlock()
	}
	base := r.cfg.ProcRoot + "/" + strconv.Itoa(int(o.tid)) + "/fd/"
	InodesCache.Add(inodeKey, &InodeItem{FdPath: base + strconv.Itoa(int(o.fd)), Pid: int(o.pid), LastSeen: now, fd: o})
	PidsCache.Add(&ProcItem{FdPath: base, Pid: int(o.pid), LastSeen: now})
}

// CacheCleanerTask runs Default's cleaner and the seed caches' expiry
// (entries unused for DefaultMaxAge) until Default().Close(); call it as
// `go CacheCleanerTask()`. It returns at once if Default runs already.
func CacheCleanerTask() {
	r := Default()
	expiry := func(ctx context.Context) {
		loop.Every(ctx, r.cfg.CleanPeriod, func() {
			InodesCache.DeleteOldItems(r.cfg.MaxAge)
			PidsCache.DeleteOldItems(r.cfg.MaxAge)
		})
	}
	if err := r.start(context.Background(), expiry); err != nil {
		return
	}
	<-r.run.Done()
}

// NetstatEntry is one /proc/net row, in the shape the seed's netstat entry
// (and github.com/cakturk/go-netstat's SockTabEntry) give it.
type NetstatEntry struct {
	Proto   string
	SrcIP   net.IP
	SrcPort uint
	DstIP   net.IP
	DstPort uint
	UserID  int
	INode   int
	State   State
}

// GetInodeFromNetstat searches /proc/net/<protocol> (protocol as the seed
// names it: "tcp", "udp6", "udplite", "raw", "icmp"...) for the connection
// src -> dst as Lookup's /proc/net fallback matches it. On success it fills
// *netEntry, appends the inode to *inodeList and returns true.
func GetInodeFromNetstat(netEntry *NetstatEntry, inodeList *[]int, protocol string, srcIP net.IP, srcPort uint, dstIP net.IP, dstPort uint) bool {
	p, err := ParseProto(protocol)
	if err != nil {
		return false
	}
	src := netip.AddrPortFrom(ipAddr(srcIP), uint16(srcPort))
	dst := netip.AddrPortFrom(ipAddr(dstIP), uint16(dstPort))
	s, err := Default().procNetFind(p, src, dst)
	if err != nil {
		s, err = Default().procNetFind(p, dst, src)
	}
	if err != nil || s.Inode == 0 {
		return false
	}
	if netEntry != nil {
		*netEntry = NetstatEntry{
			Proto: protocol, SrcIP: s.Local.Addr().AsSlice(), SrcPort: uint(s.Local.Port()),
			DstIP: s.Remote.Addr().AsSlice(), DstPort: uint(s.Remote.Port()),
			UserID: int(s.UID), INode: int(s.Inode), State: s.State,
		}
	}
	if inodeList != nil {
		*inodeList = append(*inodeList, int(s.Inode))
	}
	return true
}

func ipAddr(ip net.IP) netip.Addr {
	if v4 := ip.To4(); v4 != nil {
		return netip.AddrFrom4([4]byte(v4))
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}
