package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BaseCmdline starts every kernel command line, after the console of the
// architecture's serial port (console=ttyS0, the 8250 on x86_64;
// console=ttyAMA0, the PL011 of qemu's arm64 virt machine; both built into
// Debian's kernels): a reboot on panic (which ends qemu, started with
// -no-reboot) and kernel messages only from warnings up.
const BaseCmdline = "panic=-1 quiet"

// machine is how qemu boots one architecture.
type machine struct {
	qemu, pkg string   // emulator, and the Debian package that has it
	args      []string // machine, accelerator and CPU
	console   string   // the serial console's device
}

// machines are the architectures Boot runs, by GOARCH. TCG both: nested
// KVM fails on the CI machines, and an arm64 guest on an x86_64 host has
// nothing else. On arm64, pauth-impdef=on replaces the architected
// pointer-authentication algorithm (QARMA, slow to emulate) with qemu's
// own: the guest sees the same feature, the emulation runs faster.
var machines = map[string]machine{
	"amd64": {qemu: "qemu-system-x86_64", pkg: "qemu-system-x86",
		args: []string{"-accel", "tcg", "-cpu", "max"}, console: "ttyS0"},
	"arm64": {qemu: "qemu-system-aarch64", pkg: "qemu-system-arm",
		args: []string{"-M", "virt", "-accel", "tcg", "-cpu", "max,pauth-impdef=on"}, console: "ttyAMA0"},
}

// Cmdline returns the kernel command line Boot gives k: the console of its
// architecture, BaseCmdline, k.Cmdline and extra.
func Cmdline(k Kernel, extra string) string {
	return strings.Join(strings.Fields("console="+machines[k.GoArch()].console+" "+BaseCmdline+" "+k.Cmdline+" "+extra), " ")
}

// DefaultTimeout bounds one VM run when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Minute

// ErrIncomplete is returned when the VM stopped before /init printed the
// done marker: a kernel panic, a crash of /init or a qemu failure.
var ErrIncomplete = errors.New("vmtest: VM stopped before the tests finished")

// Options tune a VM run. The zero value boots with 2 CPUs and 2 GiB.
type Options struct {
	// Timeout bounds the whole run, boot to power-off; DefaultTimeout
	// when zero. The context's deadline applies too.
	Timeout time.Duration
	// MemoryMB is the guest memory; 2048 when zero.
	MemoryMB int
	// CPUs is the guest CPU count; 2 when zero.
	CPUs int
	// Cmdline is appended to BaseCmdline and the kernel's own Cmdline.
	Cmdline string
	// Env holds extra KEY=VALUE pairs for the tests.
	Env []string
	// Console, when set, receives the serial console line by line as it
	// arrives (carriage returns removed).
	Console io.Writer
	// QEMU is the emulator; when empty, the architecture's from PATH
	// (qemu-system-x86_64, qemu-system-aarch64), or for amd64
	// $PROCTRACK_VMTEST_QEMU when set.
	QEMU string
	// Busybox is a static busybox of the kernel's architecture;
	// Cache.BusyboxArch finds one when empty.
	Busybox string
	// Cache is where a busybox is fetched into when needed; the default
	// cache when nil.
	Cache *Cache
}

// TestResult is what one test binary did in the VM.
type TestResult struct {
	// Name is the Test's Name.
	Name string
	// Output is what the binary printed (stdout and stderr interleaved, as
	// on the console; kernel messages printed meanwhile are included).
	Output string
	// ExitCode is the binary's exit status, 128+n when signal n killed it,
	// and -1 when it never finished.
	ExitCode int
	// Duration runs from the start marker to the exit marker, as the host
	// saw them.
	Duration time.Duration
}

// Passed reports whether the test binary exited with status 0.
func (t TestResult) Passed() bool { return t.ExitCode == 0 }

// Result is what one VM run did.
type Result struct {
	// Kernel is the kernel booted.
	Kernel Kernel
	// Cmdline is the full kernel command line.
	Cmdline string
	// Release and LSM are uname -r and /sys/kernel/security/lsm in the
	// guest, from the boot marker.
	Release, LSM string
	// GuestUptime is the guest's uptime when /init printed the boot
	// marker (kernel boot plus unpacking the initramfs).
	GuestUptime time.Duration
	// Tests holds one entry per Test, in order.
	Tests []TestResult
	// Console is the whole serial log, carriage returns removed.
	Console string
	// Prepare is the time spent writing the initramfs, InitramfsBytes its
	// compressed size.
	Prepare        time.Duration
	InitramfsBytes int64
	// Boot runs from starting qemu to the boot marker; Total from starting
	// qemu to its exit.
	Boot, Total time.Duration
}

// Passed reports whether every test ran and exited with status 0.
func (r *Result) Passed() bool {
	if r == nil || len(r.Tests) == 0 {
		return false
	}
	for _, t := range r.Tests {
		if !t.Passed() {
			return false
		}
	}
	return true
}

// Run boots k with testBinary as the only test, passing args, and returns
// the binary's output and exit status. err reports a VM that did not boot,
// crashed or timed out; a failing test is a non-zero exitCode with a nil
// err.
func Run(ctx context.Context, k Kernel, testBinary string, args ...string) (output string, exitCode int, err error) {
	r, err := Boot(ctx, k, []Test{{Name: filepath.Base(testBinary), Binary: testBinary, Args: args}}, Options{})
	if r == nil || len(r.Tests) == 0 {
		return "", -1, err
	}
	return r.Tests[0].Output, r.Tests[0].ExitCode, err
}

// Boot builds an initramfs holding tests, boots k under qemu (TCG, -cpu
// max: no KVM is assumed) and runs the tests one after the other, reading
// their output and exit codes from the serial console. The Result is
// returned even with an error, with what the console showed so far.
func Boot(ctx context.Context, k Kernel, tests []Test, opts Options) (*Result, error) {
	res := &Result{Kernel: k}
	if len(tests) == 0 {
		return res, fmt.Errorf("vmtest: kernel %s: no tests", k.Name)
	}
	for _, t := range tests {
		res.Tests = append(res.Tests, TestResult{Name: t.Name, ExitCode: -1})
	}
	m, ok := machines[k.GoArch()]
	if !ok {
		return res, fmt.Errorf("%w %q (kernel %s)", ErrUnknownArch, k.Arch, k.Name)
	}
	qemu := opts.QEMU
	if qemu == "" && k.GoArch() == "amd64" {
		qemu = os.Getenv("PROCTRACK_VMTEST_QEMU")
	}
	if qemu == "" {
		qemu = m.qemu
	}
	qemuPath, err := exec.LookPath(qemu)
	if err != nil {
		return res, fmt.Errorf("vmtest: %w (apt-get install %s)", err, m.pkg)
	}
	busybox := opts.Busybox
	if busybox == "" {
		c := opts.Cache
		if c == nil {
			c = &Cache{}
		}
		if busybox, err = c.BusyboxArch(ctx, k.GoArch()); err != nil {
			return res, err
		}
	}

	start := time.Now()
	tmp, err := os.MkdirTemp("", "proctrack-vmtest-")
	if err != nil {
		return res, fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initrd.gz")
	if err := writeInitramfs(initrd, Initramfs{Busybox: busybox, Tests: tests, Env: opts.Env}); err != nil {
		return res, err
	}
	if st, err := os.Stat(initrd); err == nil {
		res.InitramfsBytes = st.Size()
	}
	res.Prepare = time.Since(start)

	res.Cmdline = Cmdline(k, opts.Cmdline)
	mem, cpus := opts.MemoryMB, opts.CPUs
	if mem == 0 {
		mem = 2048
	}
	if cpus == 0 {
		cpus = 2
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append(append([]string(nil), m.args...),
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-nodefaults", "-no-reboot", "-display", "none",
		"-serial", "stdio", "-monitor", "none",
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", res.Cmdline)
	cmd := exec.CommandContext(ctx, qemuPath, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, fmt.Errorf("vmtest: %w", err)
	}
	qemuStart := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("vmtest: start %s: %w", qemu, err)
	}
	p := newConsoleParser(res, qemuStart, opts.Console)
	var killTimer *time.Timer
	br := bufio.NewReaderSize(out, 64<<10)
	for {
		line, rerr := br.ReadString('\n')
		if line != "" {
			p.line(strings.TrimRight(strings.ReplaceAll(line, "\r", ""), "\n"))
			if p.done && killTimer == nil {
				// /init powers off next; a guest that halts instead
				// of powering off is stopped after a grace period.
				killTimer = time.AfterFunc(15*time.Second, func() {
					_ = cmd.Process.Kill()
				})
			}
		}
		if rerr != nil {
			break
		}
	}
	werr := cmd.Wait()
	if killTimer != nil {
		killTimer.Stop()
	}
	res.Total = time.Since(qemuStart)
	res.Console = p.log.String()
	if p.cur >= 0 { // the output of a test that never finished
		res.Tests[p.cur].Output = strings.TrimRight(p.outputs[p.cur].String(), "\n")
		res.Tests[p.cur].Duration = time.Since(p.curAt)
	}
	switch {
	case ctx.Err() != nil && !p.done:
		return res, fmt.Errorf("vmtest: kernel %s: %s after %s: %w%s", k.Name, p.stage(), timeout, ctx.Err(), p.tail())
	case !p.done:
		status := "qemu exited"
		if werr != nil {
			status = "qemu: " + werr.Error()
		}
		return res, fmt.Errorf("%w: kernel %s: %s; %s%s%s", ErrIncomplete, k.Name, p.stage(), status, stderrText(&stderr), p.tail())
	}
	return res, nil
}

func writeInitramfs(dst string, ir Initramfs) error {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = ir.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("vmtest: %w", cerr)
	}
	return err
}

func stderrText(b *bytes.Buffer) string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return ""
	}
	return "; qemu stderr: " + s
}

// consoleParser follows the markers of the serial log.
type consoleParser struct {
	res     *Result
	start   time.Time
	console io.Writer
	log     strings.Builder
	booted  bool
	done    bool
	cur     int // index of the running test, -1 between tests
	exited  int // tests whose exit marker came
	curAt   time.Time
	outputs []strings.Builder
}

func newConsoleParser(res *Result, start time.Time, console io.Writer) *consoleParser {
	return &consoleParser{res: res, start: start, console: console, cur: -1,
		outputs: make([]strings.Builder, len(res.Tests))}
}

// line takes one console line, without its line end.
func (p *consoleParser) line(l string) {
	p.log.WriteString(l)
	p.log.WriteByte('\n')
	if p.console != nil {
		fmt.Fprintln(p.console, l)
	}
	switch {
	case strings.Contains(l, MarkerBoot+" "):
		p.booted = true
		p.res.Boot = time.Since(p.start)
		rest := l[strings.Index(l, MarkerBoot+" ")+len(MarkerBoot)+1:]
		if i := strings.Index(rest, "lsm="); i >= 0 {
			p.res.LSM = strings.TrimSpace(rest[i+len("lsm="):])
			rest = rest[:i]
		}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "release":
				p.res.Release = v
			case "uptime":
				if s, err := strconv.ParseFloat(v, 64); err == nil {
					p.res.GuestUptime = time.Duration(s * float64(time.Second))
				}
			}
		}
	case strings.Contains(l, MarkerStart+" "):
		f := strings.Fields(l[strings.Index(l, MarkerStart+" ")+len(MarkerStart):])
		if len(f) > 0 {
			if i, err := strconv.Atoi(f[0]); err == nil && i >= 0 && i < len(p.outputs) {
				p.cur, p.curAt = i, time.Now()
			}
		}
	case strings.Contains(l, MarkerExit+" ") && p.cur >= 0:
		i := strings.Index(l, MarkerExit+" ")
		if i > 0 {
			p.outputs[p.cur].WriteString(l[:i] + "\n")
		}
		t := &p.res.Tests[p.cur]
		if f := strings.Fields(l[i+len(MarkerExit):]); len(f) > 0 {
			if code, err := strconv.Atoi(f[0]); err == nil {
				t.ExitCode = code
			}
		}
		t.Duration = time.Since(p.curAt)
		t.Output = strings.TrimRight(p.outputs[p.cur].String(), "\n")
		p.cur = -1
		p.exited++
		// The done marker may be lost if power-off beats the UART: the
		// last exit marker ends the run as well.
		p.done = p.done || p.exited == len(p.res.Tests)
	case strings.Contains(l, MarkerDone):
		p.done = true
	case p.cur >= 0:
		p.outputs[p.cur].WriteString(l + "\n")
	}
}

// stage says where the run stopped.
func (p *consoleParser) stage() string {
	switch {
	case !p.booted:
		return "kernel did not reach /init"
	case p.cur >= 0:
		return fmt.Sprintf("test %s did not finish", p.res.Tests[p.cur].Name)
	case p.done:
		return "done"
	}
	return "/init stopped between tests"
}

// tail returns the last lines of the console, for an error message.
func (p *consoleParser) tail() string {
	lines := strings.Split(strings.TrimRight(p.log.String(), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "; console empty"
	}
	return "; console ends:\n\t" + strings.Join(lines, "\n\t")
}
