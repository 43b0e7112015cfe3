package process

// InitUserNS is the inode number of the initial user namespace
// (PROC_USER_INIT_INO): a process whose Credentials.UserNS equals it is in
// the host's user namespace.
const InitUserNS = 0xEFFFFFFD

// Credentials are the full credentials of a task (credentials(7)).
type Credentials struct {
	UID, EUID, SUID, FSUID uint32 // real, effective, saved set, filesystem
	GID, EGID, SGID, FSGID uint32
	Groups                 []uint32 // supplementary groups
	CapInheritable         CapSet
	CapPermitted           CapSet
	CapEffective           CapSet
	CapBounding            CapSet
	CapAmbient             CapSet
	NoNewPrivs             bool // prctl(PR_SET_NO_NEW_PRIVS) is set
	Seccomp                int  // 0 off, 1 strict, 2 filter
	// UserNS is the inode of the user namespace the credentials belong to;
	// 0 when it could not be read.
	UserNS uint64
}

// InHostUserNS reports whether the credentials are those of the host's
// (initial) user namespace; false when unknown.
func (c *Credentials) InHostUserNS() bool { return c.UserNS == InitUserNS }

// Namespaces holds the inode numbers of a process's namespaces (the
// /proc/<pid>/ns links); 0 means unknown or not supported by the kernel.
type Namespaces struct {
	PID, Mnt, Net, User, UTS, IPC, Cgroup, Time uint64
}
