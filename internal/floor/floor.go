// Package floor builds the C reference programs that set the floor the
// monitoring methods are measured against in the same benchmark run: an exec
// storm (storm.c), the cheapest proc-connector listener (cnlisten.c), one
// that names processes the way the netlink method must (cnname.c) and the
// floor of an audit method (auditfloor.c: the method's rules and transport,
// the records received and nothing else). They are embedded here and
// compiled with the system's C compiler into the test's temporary
// directory; a benchmark without a compiler skips with the reason.
// Imported by tests and benchmarks only; the project itself stays pure Go.
package floor

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

//go:embed testdata/*.c
var sources embed.FS

// Build compiles the embedded program name ("storm", "cnname", ...) with
// cc -O2 into tb's temporary directory and returns the binary's path. It
// skips tb when no C compiler is installed and fails it when the compile
// fails.
func Build(tb testing.TB, name string) string {
	tb.Helper()
	src, err := sources.ReadFile("testdata/" + name + ".c")
	if err != nil {
		tb.Fatalf("floor: no program %q: %v", name, err)
	}
	cc := ""
	for _, c := range []string{"cc", "gcc", "clang"} {
		if p, err := exec.LookPath(c); err == nil {
			cc = p
			break
		}
	}
	if cc == "" {
		tb.Skip("floor: no C compiler (cc, gcc or clang) to build the reference program " + name)
	}
	dir := tb.TempDir()
	cfile := filepath.Join(dir, name+".c")
	if err := os.WriteFile(cfile, src, 0o644); err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if out, err := exec.Command(cc, "-O2", "-o", bin, cfile).CombinedOutput(); err != nil {
		tb.Fatalf("floor: %s %s: %v\n%s", cc, name, err, out)
	}
	return bin
}

// Fields parses a line of space-separated key=value pairs, the form the
// reference programs print their results in ("execs=20000 rate=2500.1").
// A leading word without "=" (such as "RESULT") is ignored.
func Fields(line string) map[string]float64 {
	m := make(map[string]float64)
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = x
		}
	}
	return m
}

// Storm runs the storm binary (from Build(tb, "storm")): n fork+exec+wait of
// /bin/true from workers processes, each writing its children's pids to
// <prefix>.<worker> when prefix is not empty. It returns the rate in execs
// per second.
func Storm(tb testing.TB, bin string, n, workers int, prefix string) float64 {
	tb.Helper()
	args := []string{strconv.Itoa(n), strconv.Itoa(workers)}
	if prefix != "" {
		args = append(args, prefix)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		tb.Fatalf("floor: storm: %v", err)
	}
	f := Fields(string(out))
	if f["fails"] != 0 || f["rate"] == 0 {
		tb.Fatalf("floor: storm: %s", out)
	}
	return f["rate"]
}

// Pids reads the pids a storm run with prefix wrote, one file per worker.
func Pids(prefix string, workers int) ([]int, error) {
	var pids []int
	for w := 0; w < workers; w++ {
		b, err := os.ReadFile(fmt.Sprintf("%s.%d", prefix, w))
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Fields(string(b)) {
			p, err := strconv.Atoi(l)
			if err != nil {
				return nil, fmt.Errorf("floor: %s.%d: %w", prefix, w, err)
			}
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Listener is a reference listener running (cnname, cnlisten): started by
// StartListener, ended by Stop.
type Listener struct {
	cmd  *exec.Cmd
	out  bytes.Buffer  // what it printed after "ready"
	done chan struct{} // closed when its output has been read to the end
}

// StartListener starts the listener bin (from Build) with args and waits
// for its "ready" line: from then on it receives every event. It fails tb
// when the listener cannot start or ends before it is ready.
func StartListener(tb testing.TB, bin string, args ...string) *Listener {
	tb.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	defer pw.Close()
	l := &Listener{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	l.cmd.Stdout, l.cmd.Stderr = pw, os.Stderr
	if err := l.cmd.Start(); err != nil {
		pr.Close()
		tb.Fatalf("floor: start %s: %v", bin, err)
	}
	r := bufio.NewReader(pr)
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = l.cmd.Process.Kill()
		_ = l.cmd.Wait()
		pr.Close()
		tb.Fatalf("floor: %s did not get ready: %q %v", bin, line, err)
	}
	go func() {
		defer close(l.done)
		defer pr.Close()
		_, _ = l.out.ReadFrom(r)
	}()
	return l
}

// Stop ends the listener (SIGTERM), waits for it and returns the fields of
// the RESULT line it printed (see Fields): cnname's storm, named_right,
// cpu (its CPU time in seconds), and so on.
func (l *Listener) Stop(tb testing.TB) map[string]float64 {
	tb.Helper()
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatalf("floor: stop the listener: %v", err)
	}
	<-l.done
	if err := l.cmd.Wait(); err != nil {
		tb.Fatalf("floor: listener: %v", err)
	}
	for _, line := range strings.Split(l.out.String(), "\n") {
		if strings.HasPrefix(line, "RESULT ") {
			return Fields(line)
		}
	}
	tb.Fatalf("floor: the listener printed no RESULT line: %q", l.out.String())
	return nil
}
