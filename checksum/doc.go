// Package checksum hashes the executables of running processes.
//
// A [Hasher] computes MD5, SHA-1 and SHA-256 digests on demand. All requested
// algorithms are computed from a single read of the file, results are cached
// by file identity (device, inode, size, modification and change time, all
// taken with fstat(2) on the opened descriptor before reading), the number of
// files read at the same time is bounded, and concurrent requests for the same
// file are coalesced into one read.
//
// # Which file is hashed
//
// [Hasher.Sum] takes a [Target]. When the target has a PID, the kernel's
// /proc/<pid>/exe link is opened first: it names the exact file the process
// is executing, even when that file has been deleted or replaced, lives in
// another mount namespace or on an overlay filesystem. When that fails (the
// process exited, or permission is denied), Target.RealPath and then
// Target.Path are tried. Those come from user-controllable places (argv,
// cmdline, readlink results), so they are opened without following any
// symbolic link: with openat2(2) and RESOLVE_NO_SYMLINKS, falling back to a
// component-by-component walk with O_NOFOLLOW on kernels without openat2.
// A path of the form /proc/<pid>/root/<rest> is resolved as <rest> inside
// that process's root directory (RESOLVE_IN_ROOT). When such a fallback path
// is used while /proc/<pid>/exe can still be stat'ed, its device and inode
// must match, so that a file swapped in at the same path is never reported
// as the process's binary.
//
// Candidate paths are first opened with O_PATH and checked to be regular
// files before being reopened for reading, so a path pointing at a FIFO or a
// device is refused without the device ever being opened.
//
// # Algorithms
//
// Algorithm names are the constants [HashMD5], [HashSHA1] and [HashSHA256],
// which are the keys OpenSnitch's procmon uses in a process's Checksums map.
// Digests are lowercase hexadecimal strings.
//
// # IMA
//
// When the kernel's IMA measurement list is available, [Result.IMA] carries
// the digest IMA recorded for the file (see [IMAList]). On hosts without IMA
// it is nil.
package checksum
