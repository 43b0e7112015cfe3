package netlink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// helperEnv selects the helper mode of the test binary: it starts a Source,
// prints the outcome and exits (see runHelper).
const helperEnv = "PROCTRACK_NETLINK_HELPER"

// stormEnv selects the storm mode of the test binary: it runs the given
// number of /bin/true processes one after the other and exits.
const stormEnv = "PROCTRACK_NETLINK_STORM"

// runStormHelper runs n (a decimal string) /bin/true processes in sequence
// and prints their first and last pids.
func runStormHelper(n string) int {
	count, err := strconv.Atoi(n)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	var first, last int
	for i := range count {
		pid, err := forkExecTrue("ext-" + strconv.Itoa(i))
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		if i == 0 {
			first = pid
		}
		last = pid
	}
	fmt.Println(first, last)
	return 0
}

func TestMain(m *testing.M) {
	if n := os.Getenv(stormEnv); n != "" {
		os.Exit(runStormHelper(n))
	}
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	os.Exit(m.Run())
}

// runHelper starts a Source and prints one line: "unavailable: <error>"
// when Start failed with methods.ErrUnavailable, "error: <error>" for
// another failure, or "started events=<n>" after seeing the exec of a child
// it ran (n is 1 when the exec was reported, 0 otherwise).
func runHelper() int {
	if os.Getenv(helperEnv) == "skip-ns-check" {
		nsCheck = func() error { return nil }
	}
	src := New(Config{})
	sink := newRecorder()
	err := src.Start(context.Background(), sink)
	switch {
	case errors.Is(err, methods.ErrUnavailable):
		fmt.Println("unavailable: " + err.Error())
		return 0
	case err != nil:
		fmt.Println("error: " + err.Error())
		return 0
	}
	defer src.Close()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		fmt.Println("error: run /bin/true: " + err.Error())
		return 0
	}
	n := 0
	if sink.waitFor(process.EventExec, cmd.Process.Pid, 5*time.Second) != nil {
		n = 1
	}
	fmt.Printf("started events=%d\n", n)
	return 0
}

// recorder is a methods.Sink that keeps every event.
type recorder struct {
	mu     sync.Mutex
	cond   *sync.Cond
	events []*process.Event
	losses []string
	lost   uint64
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) Event(ev *process.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.cond.Broadcast()
}

func (r *recorder) Lost(n uint64, reason string) {
	r.mu.Lock()
	r.losses = append(r.losses, fmt.Sprintf("%d: %s", n, reason))
	r.lost += n
	r.mu.Unlock()
}

// snapshot returns the events and loss reports so far.
func (r *recorder) snapshot() ([]*process.Event, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*process.Event(nil), r.events...), append([]string(nil), r.losses...)
}

// waitFor waits until an event of kind about pid arrived and returns it, or
// nil after timeout.
func (r *recorder) waitFor(kind process.EventKind, pid int, timeout time.Duration) *process.Event {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, r.cond.Broadcast)
	defer t.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; ; {
		for ; i < len(r.events); i++ {
			if ev := r.events[i]; ev.Kind == kind && ev.PID == pid {
				return ev
			}
		}
		if !time.Now().Before(deadline) {
			return nil
		}
		r.cond.Wait()
	}
}
