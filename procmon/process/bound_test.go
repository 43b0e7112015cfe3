package process

import (
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
)

func argsBytes(args []string) (n int) {
	for _, a := range args {
		n += len(a) + 1
	}
	return n
}

func envBytes(env map[string]string) (n int) {
	for k, v := range env {
		n += len(k) + len(v) + 2
	}
	return n
}

func TestBoundArgs(t *testing.T) {
	args := []string{"/bin/prog", "abcdef", "ghij"} // 10 + 7 + 5 bytes
	for _, c := range []struct {
		max  int
		want []string
		cut  bool
	}{
		{22, args, false},
		{100, args, false},
		{21, []string{"/bin/prog", "abcdef", "ghi"}, true},
		{19, []string{"/bin/prog", "abcdef", "g"}, true},
		{18, []string{"/bin/prog", "abcdef"}, true}, // no room for a byte and its NUL
		{17, []string{"/bin/prog", "abcdef"}, true},
		{3, []string{"/b"}, true},
		{0, []string{}, true},
	} {
		got, cut := BoundArgs(args, c.max)
		if !slices.Equal(got, c.want) || cut != c.cut || argsBytes(got) > max(c.max, 0) {
			t.Errorf("BoundArgs(%q, %d) = %q %v, want %q %v", args, c.max, got, cut, c.want, c.cut)
		}
	}
	if got, _ := BoundArgs(args, 100); &got[0] != &args[0] {
		t.Error("arguments that fit were copied")
	}
}

func TestBoundEnv(t *testing.T) {
	env := map[string]string{"A": "1", "BB": "22", "C": "", "D": "x=y"} // 4 + 6 + 3 + 6 bytes
	if got, cut := BoundEnv(env, 19); cut || len(got) != 4 {
		t.Errorf("an environment that fits was cut: %v", got)
	}
	got, cut := BoundEnv(env, 13)
	if want := map[string]string{"A": "1", "BB": "22", "C": ""}; !cut || !maps.Equal(got, want) {
		t.Errorf("BoundEnv(13) = %v %v, want %v true", got, cut, want)
	}
	got, cut = BoundEnv(env, 7) // A fits; BB does not, C does; D does not
	if want := map[string]string{"A": "1", "C": ""}; !cut || !maps.Equal(got, want) {
		t.Errorf("BoundEnv(7) = %v %v, want %v true", got, cut, want)
	}
}

// raiseStackLimit lets children take arguments and environments larger than
// the usual 2 MiB (a quarter of RLIMIT_STACK), for the test's duration.
func raiseStackLimit(t *testing.T, to uint64) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_STACK, &old); err != nil {
		t.Fatal(err)
	}
	raised := syscall.Rlimit{Cur: to, Max: max(old.Max, to)}
	if err := syscall.Setrlimit(syscall.RLIMIT_STACK, &raised); err != nil {
		t.Skipf("cannot raise RLIMIT_STACK to %d: %v", to, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_STACK, &old) })
}

// TestArgsEnvBounded (issue 18): a child with 3 MiB of environment and
// 300 KiB of arguments is read keeping at most the bounds, flagged as cut;
// what is kept is the child's own: whole variables, and the arguments'
// beginning.
func TestArgsEnvBounded(t *testing.T) {
	raiseStackLimit(t, 64<<20)
	big := proctest.BigEnv("bounded", 3<<20)
	args := []string{strings.Repeat("a", 100<<10), strings.Repeat("b", 100<<10), strings.Repeat("c", 100<<10)}
	cmd := helperCmd("plain", args...)
	cmd.Env = append(cmd.Env, big...)
	c := startChild(t, cmd, true)
	want := append([]string{os.Args[0]}, args...)
	wantEnv := make(map[string]string)
	for _, kv := range cmd.Env {
		k, v, _ := strings.Cut(kv, "=")
		wantEnv[k] = v
	}

	p := FindProcess(c.PID, false)
	fast, err := NewReader().Exec(c.PID)
	if p == nil || err != nil {
		t.Fatalf("FindProcess %v, Reader.Exec %v", p, err)
	}
	for name, q := range map[string]*Process{"FindProcess": p, "Reader.Exec": fast} {
		n := len(q.Args)
		if !q.ArgsTruncated || argsBytes(q.Args) > DefaultMaxArgsBytes || n < 2 ||
			!slices.Equal(q.Args[:n-1], want[:n-1]) || !strings.HasPrefix(want[n-1], q.Args[n-1]) {
			t.Errorf("%s: %d arguments of %d bytes (truncated %v), want a cut beginning of %d bytes at most",
				name, n, argsBytes(q.Args), q.ArgsTruncated, DefaultMaxArgsBytes)
		}
	}
	if !p.EnvTruncated || envBytes(p.Env) > DefaultMaxEnvBytes || envBytes(p.Env) < DefaultMaxEnvBytes/2 {
		t.Errorf("Env: %d variables, %d bytes (truncated %v), want at most %d bytes", len(p.Env), envBytes(p.Env), p.EnvTruncated, DefaultMaxEnvBytes)
	}
	for k, v := range p.Env {
		if wantEnv[k] != v {
			t.Errorf("Env[%s] is not the child's (%d bytes, want %d)", k, len(v), len(wantEnv[k]))
		}
	}

	if s := p.Serialize(); !s.ArgsTruncated || !s.EnvTruncated {
		t.Errorf("Serialize lost the flags: %v %v", s.ArgsTruncated, s.EnvTruncated)
	}
	small := FindProcess(os.Getpid(), false)
	if small.ArgsTruncated || small.EnvTruncated || !slices.Equal(small.Args, os.Args) {
		t.Errorf("this test process, with a small environment, was cut: %v %v", small.ArgsTruncated, small.EnvTruncated)
	}
}
