package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadInput builds the examples and runs each with a bad command line:
// every run ends at once with one line on standard error and exit status
// 2, never a panic, a run without end or a silently ignored flag.
func TestBadInput(t *testing.T) {
	bin := t.TempDir()
	for _, prog := range []string{"tail", "whoowns", "ptree", "guard", "opensnitch"} {
		build(t, filepath.Join(bin, prog), prog)
	}
	for _, tc := range []struct {
		args []string
		want string // a part of the error line
	}{
		{[]string{"whoowns", "--interval", "0"}, "-interval 0s"},
		{[]string{"whoowns", "--interval", "-1s"}, "-interval -1s"},
		{[]string{"whoowns", "--watch", "--interval", "1ns"}, "at least 10ms"},
		{[]string{"whoowns", "--duration", "-1s"}, "must not be negative"},
		{[]string{"whoowns", "--interval", "x"}, `invalid value "x"`},
		{[]string{"tail", "--duration", "-1s"}, "-duration -1s"},
		{[]string{"tail", "stray", "--duration", "1s"}, `unexpected argument "stray"`},
		{[]string{"tail", "--nonsense"}, "flag provided but not defined"},
		{[]string{"ptree", "-pid", "-5"}, "-pid -5"},
		{[]string{"ptree", "1"}, `unexpected argument "1"`},
		{[]string{"guard", "--duration", "-1s"}, "must not be negative"},
		{[]string{"guard", "x", "-config", "policy.yaml"}, `unexpected argument "x"`},
		{[]string{"opensnitch", "-method", "nonsense"}, `-method "nonsense"`},
		{[]string{"opensnitch", "stray"}, `unexpected argument "stray"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, tc.args[0]), tc.args[1:]...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("still running after 20s")
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Errorf("exit: %v, want status 2", err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if !strings.Contains(lines[0], tc.want) || len(lines) != 1 {
				t.Errorf("stderr %q, want one line with %q", stderr.String(), tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// TestInterruptExitsZero runs tail until it monitors, interrupts it as
// Ctrl-C does, and expects it to end with status 0 (make run, which runs the
// built program rather than go run, then reports no error).
func TestInterruptExitsZero(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tail")
	build(t, bin, "tail")
	cmd := exec.Command(bin)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "monitoring with ") {
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGINT: %v, want exit status 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tail did not end within 20s of SIGINT")
	}
}

// build compiles the example prog to bin (without VCS stamping: the
// checkout may belong to another user than the one running the tests).
func build(t *testing.T, bin, prog string) {
	t.Helper()
	out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, "../../"+prog).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", prog, err, out)
	}
}
