package procfs

import (
	"os"
	"strconv"
	"strings"
)

// NamespaceNames lists the namespaces a Namespaces value holds, in the order
// of its fields, as named under /proc/<pid>/ns.
var NamespaceNames = [...]string{"pid", "mnt", "net", "user", "uts", "ipc", "cgroup", "time"}

// ReadNamespaces reads the inode of every namespace in NamespaceNames from
// the /proc/<pid>/ns links ("net:[4026531840]"). A namespace the kernel
// lacks, or a link this process may not read (another user's process, or a
// protected pid 1), is left 0: callers confirm separately that the process is
// still the one they meant.
func ReadNamespaces(root string, pid int) [len(NamespaceNames)]uint64 {
	var out [len(NamespaceNames)]uint64
	base := Path(root, pid, "ns/")
	for i, name := range NamespaceNames {
		if link, err := os.Readlink(base + name); err == nil {
			out[i] = ParseNSLink(link)
		}
	}
	return out
}

// ParseNSLink returns the inode in a namespace link target such as
// "net:[4026531840]", or 0.
func ParseNSLink(link string) uint64 {
	_, rest, ok := strings.Cut(link, ":[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0
	}
	v, _ := strconv.ParseUint(rest[:len(rest)-1], 10, 64)
	return v
}
