// Package cache holds proctrack's process cache, the EventsStore: what every
// event source feeds and every lookup reads.
//
// # Lifecycle of an entry
//
//   - Identity. Entries are keyed by process.Key (pid, start ticks). A pid
//     reused by a new process is a new entry; the old one is never updated
//     with the new process's details.
//   - Add. A process is added when an event source reports it (fork, exec)
//     or a lookup reads it from /proc. Its parent is taken from the cache,
//     and read from /proc only when missing (and then cached too), so Parent
//     and Tree cost no /proc read for known ancestors.
//   - Exec. Adding a process whose Key is cached replaces the entry's image
//     (path, arguments, environment, credentials, checksums) and keeps its
//     identity, ancestry and history (the number of execs and the previous
//     paths).
//   - Exit. Exit (or the seed's Delete) marks an entry exited. Lookups by
//     pid still find it for the grace period, because sockets are often
//     looked up just after their owner exited, unless its pid now names
//     another process.
//   - Lookup by pid. IsInStoreByPID checks on every call that the pid still
//     names the cached process. While the collector runs (Start), unless
//     Config.NoExitCounter, the store holds the kernel's exit counter
//     (internal/exits: a BPF program counting task exits per pid slot, in
//     memory mapped into this process): a count unchanged since the entry
//     was confirmed running proves it with no system call (about 110 ns a
//     lookup here); a moved count reads /proc/<pid>/stat once and records
//     the count again when it shows the process running and not exiting.
//     Without the counter (not started, no BPF privilege, another pid
//     namespace): one statx of /proc/<pid>, whose inode number procfs
//     changes with the process, against the number seen at the entry's
//     last confirmation (and /proc/<pid>/stat's start time when that is
//     unknown or changed; 2-3 µs). A pid reused with no event telling the
//     store is a miss at once, never the old process. Peek does no check:
//     it is for a monitor that keeps the store current itself.
//   - Removal. DeleteOldItems, run every GCPeriod by Start, removes exited
//     entries older than the grace period, except those a live descendant
//     still has as an ancestor. It also confirms, at most once per
//     GCPeriod, that entries not known to have exited still run, so the
//     cache stays true without an event source.
//   - Bound. At MaxEntries, the oldest exited entries are evicted first,
//     then the least recently seen; evictions are counted.
//
// # Concurrency
//
// Lookups take a read lock on the store only; /proc reads and hashing are
// done with no store lock held. Each entry holds the current version of its
// process: a *process.Process that the store never changes once cached. An
// exec, a detail refresh, new checksums or Change make a new version and
// swap it in under the store lock; whoever holds an older one (an event, a
// lookup's result, a child's Parent) keeps reading the moment it describes,
// without locks. Treat a version as read-only: copy it to change it, and
// never write into its Args, Env, Checksums and Tree (equal values are
// shared among processes to bound memory). A child's Parent is the parent's
// version when the child was cached.
//
// # Checksums
//
// With checksums enabled (SetComputeChecksums), the store hashes each added
// process's binary with the algorithms AddChecksumHash selected, through the
// checksum package (one read for every algorithm, results cached by file).
// Enabling checksums later back-fills the processes already cached.
package cache
