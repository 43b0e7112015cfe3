package ebpf

import (
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/kernel"
)

// lsmFloor is the LSM tier's kernel floor: security_create_user_ns (6.1)
// and the BPF LSM fixes it relies on are complete from 6.2 on. The floor is
// applied by version even where an LSM program would load (Debian's 6.1 has
// bpf in its LSM list).
var lsmFloor = kernel.Version{Major: 6, Minor: 2}

const (
	securityfsDir   = "/sys/kernel/security"
	lsmListPath     = securityfsDir + "/lsm"
	securityfsMagic = 0x73636673 // SECURITYFS_MAGIC
)

// TierReport says which tier the source runs (or would run) and why the LSM
// tier was skipped.
type TierReport struct {
	// Tier is TierLSM or TierTracepoint.
	Tier string `json:"tier"`
	// Kernel is the kernel release (uname -r).
	Kernel string `json:"kernel"`
	// LSMs is the active LSM list (/sys/kernel/security/lsm), "" when it
	// could not be read.
	LSMs string `json:"lsms"`
	// MountedSecurityfs is set when securityfs was not mounted and the
	// probe mounted it to read the list (and unmounted it again).
	MountedSecurityfs bool `json:"mounted_securityfs,omitempty"`
	// LSMProbe is the outcome of the test load and attach of an LSM
	// program: "attached", the error, or "" when not tried.
	LSMProbe string `json:"lsm_probe,omitempty"`
	// Reason says why the LSM tier was skipped, "" when it runs.
	Reason string `json:"reason,omitempty"`
}

// String returns one line: the tier and why, e.g. "tracepoint tier: lsm
// tier skipped: kernel 6.1 < 6.2".
func (r TierReport) String() string {
	s := r.Tier + " tier"
	if r.Reason != "" {
		s += ": " + r.Reason
	} else if r.Tier == TierLSM {
		s += fmt.Sprintf(": kernel %s, LSM list %s, test program attached", r.Kernel, r.LSMs)
	}
	if r.MountedSecurityfs {
		s += " (securityfs was not mounted: mounted it to read the LSM list, then unmounted it)"
	}
	return s
}

// ProbeTier probes this host as Start does and reports the tier it would
// choose: the LSM tier when the kernel is at least 6.2, bpf is in the
// active LSM list and a test LSM program loads and attaches; the tracepoint
// tier otherwise, with the reason. It mounts securityfs for the time of the
// probe if it is not mounted, and needs the privileges Start needs for the
// test program.
func ProbeTier() TierReport { return hostProber.run() }

// prober holds the probe's inputs, replaceable in tests.
type prober struct {
	release func() (string, error)
	lsmList func() (list string, mounted bool, err error)
	attach  func() error
}

var hostProber = prober{release: kernel.Release, lsmList: readLSMList, attach: attachTestLSM}

func (p prober) run() TierReport {
	r := TierReport{Tier: TierTracepoint}
	rel, err := p.release()
	if err != nil {
		r.Reason = "lsm tier skipped: kernel version unknown: " + err.Error()
		return r
	}
	r.Kernel = rel
	v, err := kernel.ParseRelease(rel)
	switch {
	case err != nil:
		r.Reason = fmt.Sprintf("lsm tier skipped: kernel release %q not understood", rel)
		return r
	case v.Less(lsmFloor):
		r.Reason = fmt.Sprintf("lsm tier skipped: kernel %s < %s", v, lsmFloor)
		return r
	}
	list, mounted, err := p.lsmList()
	r.LSMs, r.MountedSecurityfs = list, mounted
	if err != nil {
		r.Reason = "lsm tier skipped: active LSM list unreadable: " + err.Error()
		return r
	}
	if !lsmListHas(list, "bpf") {
		r.Reason = fmt.Sprintf("lsm tier skipped: bpf not in the active LSM list (%s)", list)
		return r
	}
	if err := p.attach(); err != nil {
		r.LSMProbe = err.Error()
		r.Reason = "lsm tier skipped: " + err.Error()
		return r
	}
	r.LSMProbe = "attached"
	r.Tier = TierLSM
	return r
}

// lsmListHas reports whether the comma-separated LSM list names lsm.
func lsmListHas(list, lsm string) bool {
	for _, l := range strings.Split(strings.TrimSpace(list), ",") {
		if l == lsm {
			return true
		}
	}
	return false
}

// readLSMList reads the active LSM list, mounting securityfs for the read
// when it is not mounted.
func readLSMList() (string, bool, error) {
	b, err := os.ReadFile(lsmListPath)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(securityfsDir, &st); serr == nil && st.Type == securityfsMagic {
		return "", false, err // mounted, but no list (a kernel without it)
	}
	if merr := unix.Mount("securityfs", securityfsDir, "securityfs", 0, ""); merr != nil {
		return "", false, fmt.Errorf("securityfs not mounted, and mounting it failed: %w", merr)
	}
	defer func() { _ = unix.Unmount(securityfsDir, 0) }()
	b, err = os.ReadFile(lsmListPath)
	if err != nil {
		return "", true, err
	}
	return strings.TrimSpace(string(b)), true, nil
}

// attachTestLSM loads a two-instruction LSM program on bprm_check_security
// (it returns 0: no opinion) and attaches it for a moment.
func attachTestLSM() error {
	_ = rlimit.RemoveMemlock() // so that an EPERM below is not the memlock limit
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "proctrack_probe",
		Type:         ebpf.LSM,
		AttachType:   ebpf.AttachLSMMac,
		AttachTo:     "bprm_check_security",
		License:      "Dual MIT/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	}, ebpf.ProgramOptions{})
	if err != nil {
		return fmt.Errorf("an LSM program does not load: %s", kernel.DescribeLoadError(err))
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("an LSM program loads but does not attach: %w", err)
	}
	return l.Close()
}
