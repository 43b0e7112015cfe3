package seccomp

import (
	"bufio"
	"flag"
	"fmt"
	"go/format"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/internal/sysnum"
	"github.com/proctrack/proctrack/procmon"
)

var (
	update = flag.Bool("update", false, "TestDeriveSyscalls: observe the system calls again and rewrite allowlist.go")
	fresh  = flag.Bool("fresh", false, "with -update: drop the names of the current list that this run did not observe")
)

// observeRuns is how many times -update runs each workload: a call made
// on a rare path (the checksum package's openat2 fallback) may show only
// in some runs.
const observeRuns = 2

// goRuntimeFiles are the Go runtime sources whose SYS_ numbers are the
// system calls the runtime makes itself (relative to GOROOT/src).
var goRuntimeFiles = map[string][]string{
	"amd64": {"runtime/sys_linux_amd64.s", "internal/runtime/syscall/linux/defs_linux_amd64.go"},
	"arm64": {"runtime/sys_linux_arm64.s", "internal/runtime/syscall/linux/defs_linux_arm64.go"},
}

// goRuntimeAliases fixes names the runtime sources spell differently from
// the kernel's table.
var goRuntimeAliases = map[string]string{
	"setittimer": "setitimer", // a typo in runtime/sys_linux_amd64.s (the number is right)
}

// extraSyscalls are allowed though a short observation may not see them,
// each with its reason.
var extraSyscalls = map[string]string{
	"rt_sigreturn":      "the return from every signal handler (the Go runtime preempts goroutines with SIGURG)",
	"restart_syscall":   "the kernel restarts an interrupted sleep through it",
	"exit":              "a thread exits (runtime.exitThread)",
	"exit_group":        "the process exits",
	"getrandom":         "crypto/rand, math/rand seeding, map hash seeds",
	"epoll_create1":     "the network poller (os.File and net sockets)",
	"epoll_ctl":         "the network poller",
	"epoll_pwait":       "the network poller",
	"eventfd2":          "the network poller's wake-up",
	"sched_getaffinity": "GOMAXPROCS",
	"mprotect":          "the runtime, rarely",
	"fcntl":             "os.NewFile, non-blocking descriptors",
	"getpid":            "the runtime's signal forwarding",
	"tgkill":            "goroutine preemption (SIGURG to a thread)",
	"prlimit64":         "the runtime raises RLIMIT_NOFILE at start-up (syscall.init)",
	"uname":             "kernel version checks (ebpf feature probes, this package)",
	"statx":             "os.Stat on newer Go versions",
	"newfstatat":        "os.Stat, os.Lstat",
	"fstat":             "os.File.Stat",
	"openat2":           "checksum: opening a binary by path without following symlinks, when /proc/<pid>/exe fails",
	"mount":             "ebpf: securityfs mounted for a moment to read the active LSM list, on a host that has not mounted it",
	"umount2":           "ebpf: securityfs unmounted after that read",
	"getxattr":          "process.HasFileCaps: a binary's file capabilities, read for the eBPF LSM tier's bprm_check (not on this host's tracepoint tier; TestVMSeccomp saw it in the 6.12 guests)",
}

// amd64ToARM64 maps the x86_64 system calls that arm64 lacks to what the
// same Go code calls there (its generic table has only the *at and the
// newer variants).
var amd64ToARM64 = map[string][]string{
	"open":         {"openat"},
	"creat":        {"openat"},
	"stat":         {"newfstatat"},
	"lstat":        {"newfstatat"},
	"access":       {"faccessat"},
	"readlink":     {"readlinkat"},
	"getdents":     {"getdents64"},
	"poll":         {"ppoll"},
	"select":       {"pselect6"},
	"pipe":         {"pipe2"},
	"dup2":         {"dup3"},
	"epoll_wait":   {"epoll_pwait"},
	"epoll_create": {"epoll_create1"},
	"eventfd":      {"eventfd2"},
	"fork":         {"clone"},
	"vfork":        {"clone"},
	"mkdir":        {"mkdirat"},
	"unlink":       {"unlinkat"},
	"rmdir":        {"unlinkat"},
	"rename":       {"renameat2"},
	"chmod":        {"fchmodat"},
	"chown":        {"fchownat"},
	"arch_prctl":   nil, // x86 only: thread-local storage set-up
	"time":         {"clock_gettime"},
	"getpgrp":      {"getpgid"},
	"alarm":        {"setitimer"},
	"signalfd":     {"signalfd4"},
	"inotify_init": {"inotify_init1"},
}

// workloads are what TestDeriveSyscalls observes: a monitor child with
// each method, the cache and every checksum algorithm on, given a process
// to see (runMonitorChild with variant "none").
var workloads = []string{procmon.MethodEbpf, methodEbpfTracepoint, procmon.MethodNetlink, procmon.MethodAudit, procmon.MethodProc}

// straceLine matches a system call in `strace -f -o` output: "123
// openat(...", "123 <... read resumed>...".
var straceLine = regexp.MustCompile(`^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)`)

// TestDeriveSyscalls regenerates allowlist.go with -update (as root, with
// strace installed, on an x86_64 machine):
//
//	go test ./procmon/seccomp/ -run TestDeriveSyscalls -args -update
//
// It runs a monitor child with each method under `strace -f` (observeRuns
// times), given a process to see, and keeps the system calls made after the child's
// marker (where it would install the policy); it adds the Go runtime's own
// calls read from the toolchain's sources (goRuntimeFiles) and
// extraSyscalls, and keeps the names of the current list (-fresh drops
// those this run did not see). The arm64 list is the amd64 list mapped through the
// arm64 table (amd64ToARM64 for the calls arm64 lacks) plus the arm64 Go
// runtime's calls. Without -update it checks that allowlist.go is valid:
// sorted, no duplicates, every name known for its architecture.
func TestDeriveSyscalls(t *testing.T) {
	for _, goarch := range []string{"amd64", "arm64"} {
		list := AllowList(goarch)
		if len(list) == 0 {
			t.Fatalf("%s: empty allow list", goarch)
		}
		if !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
			t.Errorf("%s: allow list not sorted or has duplicates", goarch)
		}
		p := &Policy{Enabled: true, DefaultAction: ActionErrno, Syscalls: []SyscallGroup{{Action: ActionAllow, Names: list}}}
		if err := p.ValidateArch(goarch); err != nil {
			t.Errorf("%s: %v", goarch, err)
		}
	}
	if !*update {
		return
	}
	if runtime.GOARCH != "amd64" {
		t.Fatal("-update observes amd64 and derives arm64 from it: run it on x86_64")
	}
	proctest.RequireRoot(t, "every method needs root")
	strace := proctest.RequireTool(t, "strace")

	sources := map[string][]string{} // name -> why
	add := func(name, why string) {
		if !slices.Contains(sources[name], why) {
			sources[name] = append(sources[name], why)
		}
	}
	for _, method := range workloads {
		for range observeRuns {
			names := observe(t, strace, method)
			for _, n := range names {
				add(n, method)
			}
			t.Logf("%s: %d system calls", method, len(names))
		}
	}
	for _, n := range goRuntimeSyscalls(t, "amd64") {
		add(n, "go runtime")
	}
	for n := range extraSyscalls {
		add(n, "extra")
	}
	if !*fresh {
		// Keep what earlier runs saw: observation is by sampling.
		for _, n := range AllowList("amd64") {
			if len(sources[n]) == 0 {
				add(n, "previous list")
			}
		}
	}
	amd := map[string]string{}
	for n, why := range sources {
		if _, ok := sysnum.AMD64.Number(n); !ok {
			t.Fatalf("observed %q, unknown to the x86_64 table", n)
		}
		amd[n] = strings.Join(why, ", ")
	}
	arm := map[string]string{}
	for n, why := range amd {
		targets := []string{n}
		if _, ok := sysnum.ARM64.Number(n); !ok {
			var mapped bool
			targets, mapped = amd64ToARM64[n]
			if !mapped {
				t.Fatalf("%q has no arm64 counterpart: add it to amd64ToARM64", n)
			}
		}
		for _, tn := range targets {
			if arm[tn] == "" {
				arm[tn] = why
			} else {
				arm[tn] += "; " + why
			}
			if tn != n {
				arm[tn] += " (as " + n + " on amd64)"
			}
		}
	}
	for _, n := range goRuntimeSyscalls(t, "arm64") {
		if arm[n] == "" {
			arm[n] = "go runtime (arm64)"
		}
	}
	if err := writeAllowList("allowlist.go", amd, arm); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote allowlist.go: amd64 %d, arm64 %d system calls", len(amd), len(arm))
}

// observe runs a monitor child with method under strace and returns the
// system calls it made after its marker.
func observe(t *testing.T, strace, method string) []string {
	out := filepath.Join(t.TempDir(), "strace.out")
	inner := helperCmd(helperMonitor, method, "none")
	cmd := exec.Command(strace, append([]string{"-f", "-qq", "-s", "64", "-o", out}, inner.Args...)...)
	cmd.Env = inner.Env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	child := proctest.Start(t, cmd)
	child.WaitLine(t, "ready")
	tag := "derive-" + method
	work := helperCmd(helperSleep)
	work.Args = append(work.Args, tag)
	if err := work.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = work.Wait() }()
	fmt.Fprintln(child.Stdin, tag)
	rest, _ := bufio.NewReader(child.Out).ReadString(0)
	if err := child.Cmd.Wait(); err != nil || !strings.HasSuffix(rest, "closed\n") {
		t.Fatalf("%s child: %v: %q %s", method, err, rest, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	marked := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !marked {
			marked = strings.Contains(line, markerText)
			continue
		}
		if m := straceLine.FindStringSubmatch(line); m != nil {
			seen[m[1]] = true
		}
	}
	if !marked {
		t.Fatalf("%s: no marker in the strace output", method)
	}
	return slices.Sorted(maps.Keys(seen))
}

var (
	asmDefine = regexp.MustCompile(`#define\s+SYS_([a-z0-9_]+)\s`)
	goConst   = regexp.MustCompile(`\bSYS_([A-Z0-9_]+)\s*=`)
)

// goRuntimeSyscalls reads the system calls the Go runtime makes on goarch
// from the toolchain's sources.
func goRuntimeSyscalls(t *testing.T, goarch string) []string {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	root := strings.TrimSpace(string(goroot))
	var out []string
	for _, f := range goRuntimeFiles[goarch] {
		b, err := os.ReadFile(filepath.Join(root, "src", f))
		if err != nil {
			t.Fatalf("Go runtime source: %v", err)
		}
		for _, m := range asmDefine.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1])
		}
		for _, m := range goConst.FindAllStringSubmatch(string(b), -1) {
			out = append(out, strings.ToLower(m[1]))
		}
	}
	info := sysnum.Native(goarch)
	var known []string
	for _, n := range out {
		if a, ok := goRuntimeAliases[n]; ok {
			n = a
		}
		if _, ok := info.Number(n); !ok {
			t.Fatalf("Go runtime (%s) calls %q, unknown to the table: add an alias", goarch, n)
		}
		known = append(known, n)
	}
	slices.Sort(known)
	return slices.Compact(known)
}

func writeAllowList(path string, amd, arm map[string]string) error {
	var b strings.Builder
	b.WriteString(`// Code generated by TestDeriveSyscalls -update; DO NOT EDIT.

package seccomp

// The built-in allow lists (DefaultPolicy), derived, not guessed:
//
//   - amd64: the system calls strace -f saw a monitor child make with each
//     method (ebpf in both its tiers, netlink, audit, proc), with the
//     process cache and md5, sha1 and sha256 checksums on, from where it
//     would install the policy to its Close, while it saw a process start
//     (each run twice, added to the names earlier runs saw); plus the Go
//     runtime's own calls (the SYS_ numbers of runtime/sys_linux_amd64.s
//     and internal/runtime/syscall/linux in the toolchain that ran the
//     derivation) and a few calls a short run may miss (extraSyscalls in
//     derive_test.go). The comment after each name says where it came
//     from.
//   - arm64: the amd64 list mapped by name through the aarch64 table
//     (internal/sysnum); calls arm64 does not have (open, stat, poll, ...)
//     become what Go calls there (openat, newfstatat, ppoll, ...; the map
//     amd64ToARM64 in derive_test.go), plus the arm64 Go runtime's calls.
//     It is checked on arm64 by TestVMSeccomp (every method under it in
//     the arm64 6.12 and 6.1 guests of make vmtest).
//
// Regenerate (as root, strace installed, x86_64):
//
//	go test ./procmon/seccomp/ -run TestDeriveSyscalls -args -update
//
// (-fresh to drop the names this run did not observe; they are kept
// otherwise, marked "previous list") and check it with TestDefaultPolicy,
// which runs each method under the policy and fails on any violation.

`)
	for _, l := range []struct {
		name string
		m    map[string]string
	}{{"allowAMD64", amd}, {"allowARM64", arm}} {
		fmt.Fprintf(&b, "var %s = []string{\n", l.name)
		for _, n := range slices.Sorted(maps.Keys(l.m)) {
			fmt.Fprintf(&b, "\t%q, // %s\n", n, l.m[n])
		}
		b.WriteString("}\n\n")
	}
	src, err := format.Source([]byte(b.String()))
	if err != nil {
		return err
	}
	return os.WriteFile(path, src, 0o644)
}
