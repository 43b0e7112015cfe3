package procmon

import "context"

// Names OpenSnitch's procmon package exports that its daemon uses, kept so
// that its call sites compile with only the import path changed.

// ProcessEvent is a process event in the shape of OpenSnitch's: the binary,
// the arguments joined by spaces, the task name, pid, parent pid and uid.
// proctrack's monitor delivers Event, which carries the whole Process.
type ProcessEvent struct {
	Filename string
	Args     string
	Comm     string
	PID      uint64
	PPID     uint64
	UID      uint64
}

// MemoryMapping is one region of a process's address space, from
// /proc/<pid>/maps.
type MemoryMapping struct {
	StartAddr uint64
	EndAddr   uint64
}

// Ctx is the context of the tasks an OpenSnitch-style caller runs beside
// the process monitor; it ends when CancelTasks is called. CancelTasks also
// stops the default monitor (StopMonitor): what a daemon calls when it
// exits. Creating them starts nothing.
var Ctx, CancelTasks = tasksContext()

func tasksContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	return ctx, func() {
		cancel()
		StopMonitor()
	}
}
