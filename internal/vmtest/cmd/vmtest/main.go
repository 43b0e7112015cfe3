// Command vmtest runs Go tests inside Debian kernels booted under qemu: it
// builds each package's test binary (static, CGO_ENABLED=0), downloads the
// kernels into the cache, boots each kernel once with every binary in its
// initramfs, streams the serial console and prints a summary.
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./internal/vmtest -run TestVMProbe
//	go run ./internal/vmtest/cmd/vmtest -kernel 6.12 -pkg ./methods/ebpf -run 'TestVM'
//	go run ./internal/vmtest/cmd/vmtest -list
//
// It exits 0 when every test binary passed on every kernel, 1 when a test
// failed and 2 when a kernel could not be fetched or a VM did not finish.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/proctrack/proctrack/internal/vmtest"
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(s string) error {
	if !strings.Contains(s, "=") {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	*e = append(*e, s)
	return nil
}

func main() {
	os.Exit(run())
}

func run() int {
	var pkgs, kernels listFlag
	var env envFlag
	runRe := flag.String("run", "^TestVM", "run only tests matching this regexp (-test.run)")
	verbose := flag.Bool("v", true, "verbose test output (-test.v)")
	extra := flag.String("args", "", "more test binary flags, space-separated (e.g. \"-test.count=1 -test.timeout=2m\")")
	flag.Var(&pkgs, "pkg", "package(s) whose tests run in the VM, comma-separated or repeated (default ./internal/vmtest)")
	flag.Var(&kernels, "kernel", "kernel(s) to boot, comma-separated: "+knownKernels()+" (default all)")
	flag.Var(&env, "env", "KEY=VALUE for the tests' environment (repeatable)")
	timeout := flag.Duration("timeout", vmtest.DefaultTimeout, "limit for one VM, boot to power-off")
	cmdline := flag.String("cmdline", "", "appended to the kernel command line")
	kcmdline := flag.String("kcmdline", "", "replaces every kernel's own additions to the base command line (per kernel by default: "+specCmdlines()+"); -kcmdline '' boots with the base line only")
	mem := flag.Int("mem", 2048, "guest memory in MiB")
	cpus := flag.Int("smp", 2, "guest CPUs")
	cacheDir := flag.String("cache", "", "cache directory (default $PROCTRACK_VMTEST_CACHE or <module>/.vmtest)")
	quiet := flag.Bool("q", false, "do not stream the console; print a failing test's output only")
	list := flag.Bool("list", false, "fetch the kernels, print them and exit")
	btfDir := flag.String("btf", "", "fetch the kernels, write each one's BTF to `dir`/<release>.btf and exit (bpftool btf dump file X format c makes a vmlinux.h of it)")
	flag.Parse()
	pkgs = append(pkgs, flag.Args()...)
	if len(pkgs) == 0 {
		pkgs = listFlag{"./internal/vmtest"}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cache := &vmtest.Cache{Dir: *cacheDir, Log: os.Stderr}
	t0 := time.Now()
	ks, err := cache.Kernels(ctx, kernels...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "kcmdline" {
			for i := range ks {
				ks[i].Cmdline = *kcmdline
			}
		}
	})
	for _, k := range ks {
		fmt.Printf("vmtest: kernel %-5s %s %s release %s\n", k.Name, k.ImagePackage, k.Version, k.Release)
	}
	fmt.Printf("vmtest: kernels ready in %s\n", time.Since(t0).Round(time.Millisecond))
	if *btfDir != "" {
		for _, k := range ks {
			b, err := vmtest.KernelBTF(k.Vmlinuz)
			if err == nil {
				p := filepath.Join(*btfDir, k.Release+".btf")
				if err = os.WriteFile(p, b, 0o644); err == nil {
					fmt.Printf("vmtest: wrote %s (%d bytes)\n", p, len(b))
				}
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
		return 0
	}
	if *list {
		return 0
	}

	args := []string{"-test.run", *runRe}
	if *verbose {
		args = append(args, "-test.v")
	}
	args = append(args, strings.Fields(*extra)...)
	dir, err := os.MkdirTemp("", "vmtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	// One build of the test binaries and one busybox per architecture.
	tests, busybox := map[string][]vmtest.Test{}, map[string]string{}
	for _, k := range ks {
		arch := k.GoArch()
		if _, done := busybox[arch]; done {
			continue
		}
		if busybox[arch], err = cache.BusyboxArch(ctx, arch); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		for _, p := range pkgs {
			t1 := time.Now()
			t, err := vmtest.BuildTestArch(ctx, p, arch, dir, args...)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			st, _ := os.Stat(t.Binary)
			fmt.Printf("vmtest: built %s for %s in %s (%.1f MiB)\n", t.Name, arch, time.Since(t1).Round(time.Millisecond), float64(st.Size())/(1<<20))
			tests[arch] = append(tests[arch], t)
		}
	}

	var results []*vmtest.Result
	code := 0
	for _, k := range ks {
		fmt.Printf("=== kernel %s: %s %s\n", k.Name, k.ImagePackage, k.Version)
		opts := vmtest.Options{Timeout: *timeout, MemoryMB: *mem, CPUs: *cpus, Cmdline: *cmdline,
			Env: env, Busybox: busybox[k.GoArch()], Cache: cache}
		if !*quiet {
			opts.Console = &prefixWriter{w: os.Stdout, prefix: "[" + k.Name + "] "}
		}
		r, err := bootRetrying(ctx, k, tests[k.GoArch()], opts)
		results = append(results, r)
		fmt.Printf("--- kernel %s: release %s, cmdline %q\n", k.Name, r.Release, r.Cmdline)
		fmt.Printf("    lsm=%s\n", r.LSM)
		boot := "never reached /init"
		if r.Release != "" {
			boot = fmt.Sprintf("boot to /init %s (guest uptime %s)", r.Boot.Round(time.Millisecond), r.GuestUptime.Round(time.Millisecond))
		}
		fmt.Printf("    initramfs %.1f MiB built in %s; %s; VM total %s\n",
			float64(r.InitramfsBytes)/(1<<20), r.Prepare.Round(time.Millisecond), boot, r.Total.Round(time.Millisecond))
		for _, t := range r.Tests {
			fmt.Printf("    %s %s (exit %d, %s)\n", verdict(t), t.Name, t.ExitCode, t.Duration.Round(time.Millisecond))
			if *quiet && !t.Passed() && t.Output != "" {
				fmt.Println(indent(t.Output, "      "))
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 2
		} else if !r.Passed() && code == 0 {
			code = 1
		}
		if ctx.Err() != nil {
			break
		}
	}

	fmt.Println("=== vmtest summary")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tRELEASE\tPACKAGE\tRESULT\tBOOT\tTEST\tVM TOTAL")
	for _, r := range results {
		for _, t := range r.Tests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Kernel.Name, r.Release, t.Name, verdict(t),
				r.Boot.Round(100*time.Millisecond), t.Duration.Round(100*time.Millisecond), r.Total.Round(100*time.Millisecond))
		}
	}
	_ = tw.Flush()
	// The failures again, last, where a truncated CI log still shows them.
	for _, r := range results {
		for _, t := range r.Tests {
			if t.Passed() {
				continue
			}
			fmt.Printf("=== failures of %s on %s:\n", t.Name, r.Kernel.Name)
			for _, l := range failureLines(t.Output) {
				fmt.Println("    " + l)
			}
		}
	}
	fmt.Printf("vmtest: %s in %s\n", map[int]string{0: "PASS", 1: "FAIL", 2: "ERROR"}[code], time.Since(t0).Round(time.Millisecond))
	return code
}

// bootAttempts is how many times a kernel is booted when it never reaches
// /init. Under TCG a guest kernel sometimes dies while it boots, before any
// test runs (seen: an int3 Oops in sched_clock_cpu while the kernel patches
// its own code with several vCPUs); that is no verdict on the tests.
const bootAttempts = 3

// bootRetrying boots k with the tests, again when the guest never reached
// /init, up to bootAttempts times.
func bootRetrying(ctx context.Context, k vmtest.Kernel, tests []vmtest.Test, opts vmtest.Options) (*vmtest.Result, error) {
	for attempt := 1; ; attempt++ {
		r, err := vmtest.Boot(ctx, k, tests, opts)
		// Console is empty when the VM never ran (no qemu, a bad option).
		if r == nil || r.Release != "" || r.Console == "" || attempt == bootAttempts || ctx.Err() != nil {
			return r, err
		}
		fmt.Printf("vmtest: kernel %s never reached /init (the guest failed while booting, before any test): booting again, attempt %d of %d\n",
			k.Name, attempt+1, bootAttempts)
	}
}

// failureLines picks from a test's output what says why it failed: the
// FAIL lines, the messages of t.Error and t.Fatal (file_test.go:N:) with
// their continuation lines, and panics.
func failureLines(out string) []string {
	var keep []string
	cont := false
	for _, l := range strings.Split(out, "\n") {
		s := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(s, "--- FAIL"), strings.HasPrefix(s, "panic:"), strings.HasPrefix(s, "FAIL"):
			keep, cont = append(keep, s), false
		case testMessage.MatchString(s):
			keep, cont = append(keep, s), true
		case cont && strings.HasPrefix(l, "        ") && !strings.HasPrefix(s, "---") && !strings.HasPrefix(s, "==="):
			keep = append(keep, "  "+s)
		default:
			cont = false
		}
	}
	if len(keep) > 60 {
		keep = append(keep[:60], fmt.Sprintf("... %d more lines", len(keep)-60))
	}
	return keep
}

// testMessage matches the start of a t.Log/t.Error line: "name_test.go:12: ".
var testMessage = regexp.MustCompile(`^\S+_test\.go:\d+: `)

func verdict(t vmtest.TestResult) string {
	switch {
	case t.ExitCode == 0:
		return "PASS"
	case t.ExitCode < 0:
		return "INCOMPLETE"
	}
	return "FAIL"
}

func knownKernels() string {
	var n []string
	for _, s := range vmtest.DefaultSpecs {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

func specCmdlines() string {
	var n []string
	for _, s := range vmtest.DefaultSpecs {
		n = append(n, s.Name+": "+strconv.Quote(s.Cmdline))
	}
	return strings.Join(n, ", ")
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// prefixWriter writes each line it is given (the console writes whole
// lines) after a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}
