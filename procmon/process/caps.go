package process

import (
	"fmt"
	"math/bits"
	"strings"
)

// CapSet is a capability set as a bitmask: bit n is capability n of
// capabilities(7).
type CapSet uint64

// capNames are the capability names of capabilities(7), indexed by number.
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapLast is the highest capability number proctrack has a name for.
const CapLast = len(capNames) - 1

// CapName returns the capabilities(7) name of capability n, or "CAP_<n>" for
// a number newer than this table.
func CapName(n int) string {
	if n >= 0 && n < len(capNames) {
		return capNames[n]
	}
	return fmt.Sprintf("CAP_%d", n)
}

// CapByName returns the number of a capability given its name, with or
// without the CAP_ prefix, in any case ("cap_net_raw", "NET_RAW").
func CapByName(name string) (int, bool) {
	u := strings.ToUpper(name)
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	for i, n := range capNames {
		if n == u {
			return i, true
		}
	}
	return 0, false
}

// Has reports whether capability n is in the set.
func (c CapSet) Has(n int) bool { return n >= 0 && n < 64 && c&(1<<uint(n)) != 0 }

// Names returns the names of the capabilities in the set, lowest first.
func (c CapSet) Names() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(c)))
	for v := uint64(c); v != 0; v &= v - 1 {
		out = append(out, CapName(bits.TrailingZeros64(v)))
	}
	return out
}

// String returns the names joined by commas, or "" for the empty set.
func (c CapSet) String() string { return strings.Join(c.Names(), ",") }

// Hex returns the set as /proc/<pid>/status shows it (16 hex digits).
func (c CapSet) Hex() string { return fmt.Sprintf("%016x", uint64(c)) }
