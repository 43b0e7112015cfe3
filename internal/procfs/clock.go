package procfs

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// BootTime returns the wall-clock time the system booted, derived from the
// realtime and boottime clocks (more precise than /proc/stat btime, which is
// whole seconds). Start ticks in /proc/<pid>/stat count from this instant.
func BootTime() time.Time {
	var bt unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt); err != nil {
		return time.Time{}
	}
	return now.Add(-time.Duration(bt.Nano()))
}

// Boot returns BootTime as computed at its first call: the one instant
// that start ticks and event times are converted with in this process, so
// that they stay comparable (and no system call is made per event).
var Boot = sync.OnceValue(BootTime)

// TicksToTime converts start ticks since boot into wall-clock time.
func TicksToTime(boot time.Time, ticks uint64) time.Time {
	return boot.Add(time.Duration(ticks) * (time.Second / UserHZ))
}
