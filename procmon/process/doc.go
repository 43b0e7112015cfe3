// Package process is proctrack's core model: the Process type with its
// identity, image, credentials, namespaces and container identity, read from
// /proc. Every other layer (the cache, the monitoring methods, procmon)
// imports it, and it imports none of them; procmon re-exports its names so a
// user needs one import.
//
// # Identity
//
// A process is identified by its Key: the pid and the start time in clock
// ticks since boot (/proc/<pid>/stat field 22). A pid reused by a new process
// has another Key; Key.String is the stable id string used across proctrack.
//
// # Reading /proc
//
// FindProcess and (*Process).GetDetails read a process from /proc. A process
// can exit while it is read: GetDetails re-checks the identity at the end and
// returns an error matching ErrGone rather than a half-filled value presented
// as truth. Fields a caller may not read (another user's environment without
// privilege) are left empty; they are not an error.
//
// # Sharing
//
// A Process is a plain value with no lock. The process cache never changes a
// Process it has handed out (in an Event, a lookup, a Parent link): a change
// of the process makes a new version, and the old one stays the moment it
// describes. Such a Process is read from any goroutine without locks; it is
// copied (c := *p) to be changed, and its Args, Env, Checksums and Tree,
// which may be shared, are replaced rather than written into.
package process
