package procmon

import (
	"net"
	"sync"

	"github.com/proctrack/proctrack/sockets"
)

// Sockets to processes: the seed API's names, on one default
// sockets.Resolver created on first use over EventsCache (so owners that
// exited are named during the cache's grace period). For new code,
// sockets.New(sockets.Config{Cache: m.Cache()}) and Resolver.Lookup.

// InodeItem is an entry of CacheInodes.
type InodeItem = sockets.InodeItem

// ProcItem is an entry of CacheProcs.
type ProcItem = sockets.ProcItem

// CacheInodes is the seed's cache of socket inodes.
type CacheInodes = sockets.CacheInodes

// CacheProcs is the seed's cache of processes that held sockets.
type CacheProcs = sockets.CacheProcs

// NetstatEntry is a /proc/net entry, in go-netstat's shape.
type NetstatEntry = sockets.NetstatEntry

var resolverOnce sync.Once

// resolver returns the default Resolver, installing one over EventsCache
// the first time.
func resolver() *sockets.Resolver {
	resolverOnce.Do(func() {
		sockets.SetDefault(sockets.New(sockets.Config{Cache: EventsCache}))
	})
	return sockets.Default()
}

// NewCacheOfInodes returns a new cache for inodes.
func NewCacheOfInodes() *CacheInodes { return sockets.NewCacheOfInodes() }

// GetPIDFromINode returns the pid holding socket inode, or -1; see
// sockets.GetPIDFromINode for the lookup order.
func GetPIDFromINode(inode int, inodeKey string) int {
	resolver()
	return sockets.GetPIDFromINode(inode, inodeKey)
}

// GetInodeFromNetstat finds the inode of a connection in /proc/net; see
// sockets.GetInodeFromNetstat.
func GetInodeFromNetstat(netEntry *NetstatEntry, inodeList *[]int, protocol string, srcIP net.IP, srcPort uint, dstIP net.IP, dstPort uint) bool {
	resolver()
	return sockets.GetInodeFromNetstat(netEntry, inodeList, protocol, srcIP, srcPort, dstIP, dstPort)
}

// CacheCleanerTask periodically removes stale entries from the socket
// caches, until the default resolver is closed.
func CacheCleanerTask() {
	resolver()
	sockets.CacheCleanerTask()
}
