package netlink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/internal/sinktest"
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
	proctest.RunProbe()
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
	if sink.WaitFor(process.EventExec, cmd.Process.Pid, nil, 5*time.Second) != nil {
		n = 1
	}
	fmt.Printf("started events=%d\n", n)
	return 0
}

// recorder is the shared test sink.
type recorder = sinktest.Recorder

func newRecorder() *recorder { return sinktest.NewRecorder() }
