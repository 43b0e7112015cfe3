package process

import (
	"slices"
	"strings"
)

// What a Process keeps of its arguments and environment. /proc/<pid>/cmdline
// and environ can hold megabytes (the kernel allows a quarter of the stack
// limit, 2 MiB by default, more with a larger limit); reads keep at most
// these many bytes and set ArgsTruncated or EnvTruncated when the file held
// more. The process cache can lower them (cache.Config).
const (
	// DefaultMaxArgsBytes bounds Args: the arguments as /proc/<pid>/cmdline
	// holds them, each with its terminating NUL.
	DefaultMaxArgsBytes = 128 << 10
	// DefaultMaxEnvBytes bounds Env: "NAME=value" and a NUL per variable.
	DefaultMaxEnvBytes = 64 << 10
)

// BoundArgs returns args cut to at most max bytes, each argument counted
// with a terminating NUL as /proc/<pid>/cmdline holds it: the arguments
// that fit whole, then a copy of the beginning of the first that does not,
// if any of it fits. Arguments that fit are returned as they are (the same
// slice), with cut false.
func BoundArgs(args []string, max int) (kept []string, cut bool) {
	n := 0
	for i, a := range args {
		if n+len(a)+1 <= max {
			n += len(a) + 1
			continue
		}
		kept = slices.Clip(args[:i])
		if room := max - n - 1; room > 0 {
			kept = append(kept, strings.Clone(a[:room]))
		}
		return kept, true
	}
	return args, false
}

// BoundEnv returns env cut to at most max bytes, each variable counted as
// "NAME=value" and a NUL: whole variables, in name order, while they fit;
// a variable is never cut. An environment that fits is returned as it is
// (the same map), with cut false.
func BoundEnv(env map[string]string, max int) (kept map[string]string, cut bool) {
	n := 0
	for k, v := range env {
		n += len(k) + len(v) + 2
	}
	if n <= max {
		return env, false
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	slices.Sort(names)
	kept = make(map[string]string)
	n = 0
	for _, k := range names {
		if size := len(k) + len(env[k]) + 2; n+size <= max {
			kept[k] = env[k]
			n += size
		}
	}
	return kept, true
}
