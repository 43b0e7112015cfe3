// Package procfs reads the parts of /proc that github.com/prometheus/procfs
// does not parse the way proctrack needs: the full credential set of
// /proc/<pid>/status (supplementary groups, NoNewPrivs, Seccomp), the exact
// argument and environment lists (empty trailing arguments kept), the
// /proc/<pid>/stat fields proctrack keys processes by, cgroup paths with
// container ids, and the boot clock used to turn start ticks into wall time.
//
// Every reader takes the proc root ("/proc" on a live system, a fixture tree
// in tests) so malformed input can be tested without a kernel. A process that
// vanishes while being read yields an error matching ErrGone.
package procfs
