package procmon

import (
	"net"
	"sync"

	"github.com/proctrack/proctrack/sockets"
	"github.com/proctrack/proctrack/sockets/netstat"
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

// NetstatEntry is a /proc/net entry in OpenSnitch's shape (its
// daemon/netstat.Entry): the type GetInodeFromNetstat takes.
type NetstatEntry = netstat.Entry

var resolverOnce sync.Once

// resolver returns the default Resolver, installing one over EventsCache
// the first time.
func resolver() *sockets.Resolver {
	resolverOnce.Do(func() {
		sockets.SetDefault(sockets.New(sockets.Config{Cache: EventsCache.EventsStore}))
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

// GetInodeFromNetstat finds the connection src -> dst (or dst -> src) of
// protocol ("tcp", "udp6", "udplite", "raw", "icmp"...) in /proc/net, as
// OpenSnitch's does: on success it puts the socket's inode first in
// *inodeList and returns true. netEntry is the caller's description of the
// connection and is left as it is (the caller sets INode once a pid is
// found); sockets.GetInodeFromNetstat fills an entry instead.
func GetInodeFromNetstat(netEntry *NetstatEntry, inodeList *[]int, protocol string, srcIP net.IP, srcPort uint, dstIP net.IP, dstPort uint) bool {
	resolver()
	var found sockets.NetstatEntry
	if !sockets.GetInodeFromNetstat(&found, nil, protocol, srcIP, srcPort, dstIP, dstPort) {
		return false
	}
	if inodeList != nil {
		*inodeList = append([]int{found.INode}, *inodeList...)
	}
	return true
}

// CacheCleanerTask periodically removes stale entries from the socket
// caches, until the default resolver is closed.
func CacheCleanerTask() {
	resolver()
	sockets.CacheCleanerTask()
}
