package seccomp

import (
	"runtime"
	"slices"
)

// DefaultPolicy returns the built-in allow-list policy for the running
// architecture (amd64 or arm64): the system calls proctrack makes with
// every monitoring method running (ebpf, netlink, audit, proc), with the
// process cache, /proc and /sys reading, checksums, and the Go runtime, are
// allowed; any other call fails with EPERM (default_action errno) and, as
// the filter is installed with SECCOMP_FILTER_FLAG_LOG (LogViolations), is
// logged to the audit log, where a Watcher reports it.
//
// errno rather than kill_process: a call the list misses (a code path of
// the embedding agent, a newer Go runtime) makes one operation fail with
// an error the agent handles, instead of killing a firewall or EDR agent,
// and the log flag keeps the violation visible. An agent that prefers to
// die can set DefaultAction to ActionKillProcess.
//
// The list covers this library only: an agent that also execs programs,
// opens TCP connections, writes files or uses other kernel interfaces must
// add their system calls (a group of its own, or appended to
// Syscalls[0].Names), and should check its own run under the policy with
// default_action log and a Watcher, as this package's tests do. How the
// list was derived, and how to regenerate it, is in allowlist.go.
//
// On other architectures it returns a disabled policy (Enabled false,
// default_action allow, no groups): Install does nothing.
//
// Each call returns a new Policy the caller may change.
func DefaultPolicy() *Policy {
	names := AllowList(runtime.GOARCH)
	if names == nil {
		return &Policy{DefaultAction: ActionAllow}
	}
	return &Policy{
		Enabled:       true,
		DefaultAction: ActionErrno,
		LogViolations: true,
		Syscalls:      []SyscallGroup{{Action: ActionAllow, Names: names}},
	}
}

// AllowList returns a copy of the built-in allow list for an architecture
// ("amd64" or "arm64"; nil for any other), sorted.
func AllowList(goarch string) []string {
	switch goarch {
	case "amd64":
		return slices.Clone(allowAMD64)
	case "arm64":
		return slices.Clone(allowARM64)
	}
	return nil
}
