package proctest

import (
	"time"

	"golang.org/x/sys/unix"
)

// CPUTime returns the CPU time (user and system) this process has used:
// benchmarks divide its difference by their iterations for a cost that
// other load on a shared machine stretches less than wall time.
func CPUTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
