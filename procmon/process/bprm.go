package process

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// HasFileCaps reports whether the file at path carries file capabilities
// (the security.capability extended attribute).
func HasFileCaps(path string) bool {
	n, err := unix.Getxattr(path, "security.capability", nil)
	return err == nil && n > 0
}

// BprmFromFile describes the binary of an exec from the file system, for
// methods whose kernel interface does not carry what bprm_check sees: the
// set-user-ID and set-group-ID bits, a nosuid mount, file capabilities.
// path is the binary as the process sees it (Process.Path), realPath where
// this process reaches it (Process.RealPath). The file is read after the
// exec, so it may have changed since; a binary with no link (memfd,
// deleted) is Fileless and not read.
func BprmFromFile(path, realPath string, fileless bool) *Bprm {
	b := &Bprm{Path: path, Fileless: fileless || strings.HasPrefix(path, "/memfd:")}
	if b.Fileless || realPath == "" {
		return b
	}
	if st, err := os.Stat(realPath); err == nil {
		mode := st.Mode()
		b.Setuid = mode&os.ModeSetuid != 0
		b.Setgid = mode&os.ModeSetgid != 0 && mode&0o010 != 0
	}
	var fs unix.Statfs_t
	if unix.Statfs(realPath, &fs) == nil {
		b.NoSuid = fs.Flags&unix.ST_NOSUID != 0
	}
	b.FileCaps = HasFileCaps(realPath)
	return b
}
