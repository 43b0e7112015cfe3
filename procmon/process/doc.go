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
// FindProcess, ReadProcess and (*Process).GetDetails read a process from
// /proc, every file through the process's /proc/<pid> directory opened once
// (so all of it is of one process even if its pid is reused meanwhile) with
// raw reads into a pooled buffer. A process can exit while it is read: the
// exe link is read last, and a process that still has it has not begun to
// tear down; otherwise stat is read again, and a process that exited gives
// an error matching ErrGone rather than a half-filled value presented as
// truth. Fields a caller may not read (another user's environment without
// privilege) are left empty; they are not an error.
//
// FindProcess reads what OpenSnitch's does (identity from the stat file,
// path, arguments, working directory, environment) and leaves what
// proctrack reads beyond that for later: the credentials (Creds, UID: the
// status file), the namespaces, root and cgroup, and the stat of the binary
// (ExeDev, ExeInode, and the check of RealPath, which is Path meanwhile).
// The accessors Credentials, Namespaces, RootDir, CgroupInfo and ExeFile
// read them once, on first use, without changing the Process (the read is
// shared by its copies, guarded by a sync.Once, and gives empty values once
// the process is gone or its pid names another: Credentials then reports
// ok=false, since zero credentials are root's); Complete copies them into
// the fields of a Process the caller owns, setting Incomplete when they
// could not be read. The process cache completes every Process it is
// given, so the fields of a cached Process (an Event's, a rule's input) are
// always filled.
// ReadProcess reads everything at once.
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
