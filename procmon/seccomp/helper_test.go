package seccomp

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/procmon"
	"golang.org/x/sys/unix"
)

// The test binary re-executes itself as a child in one of these modes
// (environment variable helperEnv); only children ever install a filter,
// never the test process itself.
const (
	helperEnv = "PROCTRACK_SECCOMP_HELPER"
	// helperErrno installs {default allow, errno: [getppid]} and prints
	// what getppid, getpid and /proc/self/task/*/status say.
	helperErrno = "errno"
	// helperLog installs {default allow, log: [getppid]}, calls getppid,
	// prints "called" and waits for stdin to close.
	helperLog = "log"
	// helperMonitor runs a monitor (method in argument 1) under a variant
	// of DefaultPolicy (argument 2: "default", "none", "without=<name>"),
	// see runMonitorChild.
	helperMonitor = "monitor"
	// helperSleep is the workload a monitor child must see: it lives 2 s.
	helperSleep = "sleep"
)

// methodEbpfTracepoint is the ebpf method forced to its tracepoint tier
// (the tier of kernels without the BPF LSM).
const methodEbpfTracepoint = "ebpf-tracepoint"

// markerText is written to fd -1 by a monitor child just before it would
// install the policy: TestDeriveSyscalls counts only the calls strace
// shows after it.
const markerText = "proctrack-seccomp-derive-marker"

// runHelper runs the child mode named by helperEnv and exits; it returns
// when the process is not a child.
func runHelper() {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	args := strings.Split(os.Getenv(helperEnv+"_ARGS"), ",")
	var err error
	switch mode {
	case helperErrno:
		err = runErrnoChild()
	case helperLog:
		err = runLogChild()
	case helperMonitor:
		err = runMonitorChild(args)
	case helperSleep:
		time.Sleep(2 * time.Second)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func mustParse(doc string) *Policy {
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		panic(err)
	}
	return p
}

func runErrnoChild() error {
	p := mustParse("seccomp:\n  default_action: allow\n  syscalls:\n    - action: errno\n      names: [getppid]\n")
	if err := p.Install(); err != nil {
		return err
	}
	_, _, e := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	pid := unix.Getpid()
	// Every thread, including those started before Install, has the
	// filter (TSYNC) and no_new_privs.
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	var modes []string
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		var nnp, sec string
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "NoNewPrivs:"); ok {
				nnp = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
				sec = strings.TrimSpace(v)
			}
		}
		modes = append(modes, nnp+"/"+sec)
	}
	slices.Sort(modes)
	modes = slices.Compact(modes)
	fmt.Printf("getppid=%s getpid_ok=%v threads=%d modes=%s\n", unix.ErrnoName(e), pid == os.Getpid() && pid > 0, len(tasks), strings.Join(modes, ","))
	return nil
}

func runLogChild() error {
	p := mustParse("default_action: allow\nsyscalls:\n  - action: log\n    names: [getppid]\n")
	if err := p.Install(); err != nil {
		return err
	}
	r, _, e := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	if e != 0 || int(r) != os.Getppid() {
		return fmt.Errorf("getppid under log = %d, %v", r, e)
	}
	fmt.Println("called")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}

// runMonitorChild installs a variant of DefaultPolicy, starts a monitor
// with the method args[0] and checksums on, prints "ready", reads a tag
// from stdin, waits for the exec of a process with that tag in its
// arguments and for its sha256 in the cache, prints "seen", closes the
// monitor and prints "closed".
//
// The variants: "default" is DefaultPolicy with default_action log (an
// unlisted call runs and is logged, so the parent's Watcher sees every
// call the list misses); "without=<name>" is the same without one name;
// "errno" is DefaultPolicy as is (errno, logged); "none" installs nothing (TestDeriveSyscalls runs it under strace).
func runMonitorChild(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("monitor child args %q", args)
	}
	method, variant := args[0], args[1]
	unix.Write(-1, []byte(markerText)) //nolint:errcheck // a marker for strace: EBADF
	if variant != "none" {
		p := DefaultPolicy()
		if variant != "errno" {
			p.DefaultAction = ActionLog
		}
		if name, ok := strings.CutPrefix(variant, "without="); ok {
			names := p.Syscalls[0].Names
			i := slices.Index(names, name)
			if i < 0 {
				return fmt.Errorf("%s is not in the allow list", name)
			}
			p.Syscalls[0].Names = slices.Delete(names, i, i+1)
		}
		if err := p.Install(); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := procmon.Config{Method: method, Logger: log, ProcInterval: 100 * time.Millisecond}
	if method == methodEbpfTracepoint {
		cfg.Method, cfg.Ebpf.Tier = procmon.MethodEbpf, methodebpf.TierTracepoint
	}
	m, err := procmon.New(cfg)
	if err != nil {
		return err
	}
	c := m.Cache()
	c.SetComputeChecksums(true)
	c.AddChecksumHash(procmon.HashSHA256)
	c.AddChecksumHash(procmon.HashMD5)
	c.AddChecksumHash(procmon.HashSHA1)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		return err
	}
	if got := m.Method(); got != cfg.Method {
		_ = m.Close()
		return fmt.Errorf("monitor runs %q, want %q: %+v", got, method, m.Status())
	}
	fmt.Println("ready")
	tag, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read tag: %w", err)
	}
	tag = strings.TrimSpace(tag)
	seen := 0
	for seen == 0 {
		select {
		case ev, ok := <-m.Events():
			if !ok {
				return fmt.Errorf("events closed")
			}
			if ev.Kind != procmon.EventExec || ev.Process == nil {
				continue
			}
			mine := slices.Contains(ev.Process.Args, tag)
			if mine {
				seen = ev.PID
			}
		case <-ctx.Done():
			return fmt.Errorf("no exec event with %q", tag)
		}
	}
	var sum string
	for deadline := time.Now().Add(10 * time.Second); sum == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if item, ok := c.IsInStoreByPID(seen); ok && item.Proc != nil {
			sum = item.Proc.Checksums[procmon.HashSHA256]
		}
	}
	if sum == "" {
		return fmt.Errorf("no sha256 for pid %d", seen)
	}
	fmt.Printf("seen %d sha256=%s\n", seen, sum)
	if err := m.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	fmt.Println("closed")
	return nil
}
