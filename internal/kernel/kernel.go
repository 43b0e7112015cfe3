// Package kernel holds the facts about the running kernel that several
// packages need: its version (uname(2)), whether this process may load BPF
// programs, how to describe a BPF load error, and the ErrUnavailable
// sentinel that an interface this host does not give is reported with.
//
// It imports nothing of proctrack, so every layer may use it.
package kernel

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ErrUnavailable is matched by the error of a feature that cannot run on
// this host; the error's text says why (missing privilege, kernel support,
// another owner of the interface). methods.ErrUnavailable is this value.
var ErrUnavailable = errors.New("method unavailable")

// Version is a Linux version, major.minor.
type Version struct{ Major, Minor int }

// String returns "major.minor".
func (v Version) String() string { return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) }

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || v.Major == o.Major && v.Minor < o.Minor
}

// Release returns the running kernel's release string (uname -r).
func Release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// Running returns the running kernel's version, from uname(2).
func Running() (Version, error) {
	rel, err := Release()
	if err != nil {
		return Version{}, err
	}
	return ParseRelease(rel)
}

// ParseRelease reads the major and minor numbers of a release such as
// "6.1.0-18-amd64", "6.18.0-rc1" or "3.17".
func ParseRelease(rel string) (Version, error) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("kernel release %q: no version", rel)
	}
	num := func(s string) (int, error) {
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		return strconv.Atoi(s[:end])
	}
	major, err1 := num(parts[0])
	minor, err2 := num(parts[1])
	if err1 != nil || err2 != nil {
		return Version{}, fmt.Errorf("kernel release %q: no version", rel)
	}
	return Version{major, minor}, nil
}

// CheckBPFPrivileges returns why this process cannot load BPF tracing
// programs, or nil: it needs CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON.
// what names the programs in the error ("the socket programs"). When the
// capabilities cannot be read it returns nil and lets the load say what is
// wrong.
func CheckBPFPrivileges(what string) error {
	has := HasCap
	if has(unix.CAP_SYS_ADMIN) || (has(unix.CAP_BPF) && has(unix.CAP_PERFMON)) {
		return nil
	}
	var missing []string
	if !has(unix.CAP_BPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(unix.CAP_PERFMON) {
		missing = append(missing, "CAP_PERFMON")
	}
	return fmt.Errorf("no privilege to load %s: needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN (missing %s and CAP_SYS_ADMIN)",
		what, strings.Join(missing, ", "))
}

// HasCap reports whether the calling thread has capability c (unix.CAP_BPF,
// ...) in its effective set; true when capget(2) fails, so that the kernel
// says what is wrong.
func HasCap(c uint) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}

// DescribeLoadError returns a BPF load error's text, with the verifier's
// last lines when the verifier rejected a program.
func DescribeLoadError(err error) string {
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		// cilium/ebpf suggests the memlock limit on any EPERM; the
		// callers have removed it already.
		return strings.Replace(err.Error(), " (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", "", 1)
	}
	var lines []string
	for _, l := range ve.Log {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if n := len(lines); n > 0 && strings.HasPrefix(lines[n-1], "processed ") {
		lines = lines[:n-1]
	}
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return fmt.Sprintf("%v; verifier: %s", ve.Cause, strings.Join(lines, " | "))
}

// Namespace types whose initial namespace has a fixed inode number
// (PROC_USER_INIT_INO and PROC_PID_INIT_INO in include/linux/proc_ns.h,
// fixed since Linux 3.8).
const (
	UserNS = "user"
	PidNS  = "pid"
)

var initNSIno = map[string]uint64{UserNS: 0xEFFFFFFD, PidNS: 0xEFFFFFFC}

// OutsideInitialNS reports whether this process is provably outside the
// initial namespace of type ns (UserNS or PidNS), and the inode of the one
// it is in. It reads only /proc/self; when that cannot be read (or ns is
// another type) it reports false: unknown is not outside.
func OutsideInitialNS(ns string) (ino uint64, outside bool) {
	want, ok := initNSIno[ns]
	var st unix.Stat_t
	if !ok || unix.Stat("/proc/self/ns/"+ns, &st) != nil {
		return 0, false
	}
	return st.Ino, st.Ino != want
}
