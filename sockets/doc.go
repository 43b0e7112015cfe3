// Package sockets names the process behind a network connection or a
// socket inode, fast enough for a firewall's packet path.
//
// A Resolver (New, Config) answers two questions:
//
//   - Lookup(proto, src, dst): connection -> socket (inode, uid, state)
//     -> *process.Process. TCP, UDP, UDP-Lite, raw and ICMP (ping)
//     sockets; IPv4, IPv6 and IPv4-mapped IPv6 addresses.
//   - PIDOfInode(inode): socket inode -> pid.
//
// # Connection -> socket
//
// TCP, UDP and UDP-Lite are resolved by one exact sock_diag
// (NETLINK_SOCK_DIAG, inet_diag_req_v2) query answered by the kernel's own
// socket lookup: the exact 4-tuple, then (TCP) a listener on the local or
// wildcard address, or (UDP) an unconnected socket bound to the local or
// the wildcard address. A query costs one netlink round trip (about 12 µs;
// Lookup end to end about 23 µs warm). Raw and ICMP sockets
// are found in /proc/net/{raw,icmp}[6] (sock_diag's raw support needs a
// protocol attribute this package does not send); /proc/net is also the
// fallback for every protocol when sock_diag cannot be used. Lookup's doc
// states the matching order.
//
// # Socket inode -> process: the lookup order
//
//  1. The eBPF socket map (Config.SocketMap), where a method runs one: an
//     owner recorded by the kernel at socket creation. An extension point;
//     nothing in this package fills it.
//  2. The negative cache: an inode no scan found within NegativeTTL is
//     answered "unknown" at once (a map read, under 100 ns), so a flood of
//     unknown packets cannot force a scan each.
//  3. The inode cache: inode -> (pid, task, fd, start ticks, the inode
//     number of /proc/<pid>), filled with every socket a scan saw; the
//     /proc/<pid> number is read before the fd table. Every hit first
//     checks that the pid still names that process. Where the kernel's exit
//     counter runs (internal/exits: a BPF program counting task exits per
//     pid slot, opened at the Resolver's first lookup unless
//     Config.NoExitCounter; root, the initial pid namespace), an unchanged
//     count in the pid's slot since the owner was confirmed running proves
//     it with no system call (a pid is freed only after its task's exit,
//     which the kernel counts first); the scan records the count, read
//     before the fd table, when the owner's stat shows it running and not
//     exiting. Otherwise, or when the count moved, one statx of /proc/<pid>:
//     procfs gives each process's directory its own inode, so a pid reused
//     since the scan shows another number, at once, and is never answered
//     (a changed number is then settled by /proc/<pid>/stat and a readlink;
//     an unchanged one records the count again, one read of
//     /proc/<pid>/stat). A hit confirmed within Revalidate is then returned
//     (80-120 ns with the counter, 2-4 µs with the statx, on the
//     development VM); an older one costs one readlink of
//     /proc/<task>/fd/<fd> (a few µs more), which must still read
//     "socket:[inode]": a closed or reused fd is a miss that falls through
//     to the scans. The trust window is the one trade-off: an owner that
//     closed or handed over the socket less than Revalidate (100 ms) ago
//     can still be named, but only while it runs on its pid; Revalidate < 0
//     confirms every hit. The inode cannot name another socket meanwhile:
//     socket inode numbers are not reused until their 32-bit counter wraps.
//     An owner that exited is still answered while the process cache
//     (Config.Cache) holds it within its grace period: by Lookup and Owner
//     (the exited process itself) always, by PIDOfInode and
//     GetPIDFromINode only while no other process has taken its pid.
//  4. The pid/fd cache: the fd tables of the last 16 processes that owned
//     looked-up sockets, then those of the pids the event source saw
//     recently (Config.RecentPIDs, an extension point for a monitor).
//  5. A full scan of every process's fd table (and of each thread's whose
//     table differs from its process's: unshare(CLONE_FILES), clone without
//     CLONE_FILES). Where BPF runs (root, the initial pid namespace, unless
//     Config.NoSocketIterator), one read of a BPF iterator
//     (internal/sockfds, iter/task_file, opened at the first full scan)
//     lists every socket descriptor on the machine: 13-16 ms here for 200
//     processes holding 5,000 sockets and 10,000 other descriptors, each
//     process's /proc inode and exit count read before the listing and its
//     start time after. Otherwise /proc/*/fd and /proc/<pid>/task/<tid>/fd
//     (threads detected with kcmp(KCMP_FILES)), one readlink per
//     descriptor: 60-200 ms for the same fleet; that scan reads the newest
//     processes (the highest pids) first. Either answers the miss as soon
//     as it sees the inode (the owner's start time read, its pid confirmed
//     unchanged), finishing in the background under the scan lock; a
//     lookup that needs the scan's result meanwhile waits for it, and Close
//     waits for it to end. The scan replaces the inode cache with every
//     socket it saw, so a burst of distinct new inodes costs one scan, not
//     one each. Concurrent misses share one scan; Config.MinScanInterval
//     can bound how often misses scan at all.
//  6. Still unknown: the inode enters the negative cache.
//
// A shared socket (inherited across fork, passed over a unix socket) has
// several owners; one of them is named.
//
// # Connections whose socket is gone
//
// Lookup remembers the connections it named for Config.RecentConns. When
// the socket has gone with its owner (or lingers ownerless with inode 0
// after close), the connection is named from that memory while the owner
// is in the process cache's grace period (SocketInfo.Exited).
//
// # Seed API
//
// GetPIDFromINode, GetInodeFromNetstat (NetstatEntry), CacheInodes and
// NewCacheOfInodes, CacheProcs, InodeItem, ProcItem and CacheCleanerTask
// keep the seed's names and work on Default(), a Resolver made on first
// use (SetDefault installs another, e.g. one on a monitor's cache).
// GetPIDFromINode answers by Default's lookup order, with its trust rule
// (no readlink per hit: 140 ns warm with the exit counter here, against
// 1.6-1.75 µs for the seed's readlink per hit), and records its hits in
// InodesCache and PidsCache, which it no longer reads first.
//
// # Lifecycle
//
// New starts nothing. Start runs a cleaner goroutine (expired negative
// entries, inode entries unconfirmed for MaxAge, old remembered
// connections) until Close, which also closes the netlink socket and
// releases the exit counter the first lookup opened (Default's lives as
// long as Default). Reading
// other users' fd tables needs root (CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH).
package sockets
