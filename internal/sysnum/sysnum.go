package sysnum

import "sort"

// Table is the system call table of one architecture.
type Table struct {
	// Arch is the architecture's name as audit spells it ("x86_64",
	// "i386", "aarch64", "arm").
	Arch string
	// GOARCH is the Go name of the architecture ("amd64", "386",
	// "arm64", "arm").
	GOARCH string
	// AuditArch is the AUDIT_ARCH_* value seccomp and audit records carry.
	AuditArch uint32
	names     map[uint32]string
}

// Name returns the name of system call nr ("setuid"), or "" when the
// table has no such number.
func (t *Table) Name(nr uint32) string {
	if t == nil {
		return ""
	}
	return t.names[nr]
}

// Number returns the number of the system call name.
func (t *Table) Number(name string) (uint32, bool) {
	if t == nil {
		return 0, false
	}
	for nr, n := range t.names {
		if n == name {
			return nr, true
		}
	}
	return 0, false
}

// Names returns every system call name of the table, sorted.
func (t *Table) Names() []string {
	out := make([]string, 0, len(t.names))
	for _, n := range t.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Tables are every table, native 64-bit ABIs first.
var Tables = []*Table{AMD64, ARM64, I386, ARM}

// ByAuditArch returns the table of an AUDIT_ARCH_* value, nil when there
// is none.
func ByAuditArch(arch uint32) *Table {
	for _, t := range Tables {
		if t.AuditArch == arch {
			return t
		}
	}
	return nil
}

// ByArch returns the table of an audit architecture name ("x86_64"), nil
// when there is none.
func ByArch(arch string) *Table {
	for _, t := range Tables {
		if t.Arch == arch {
			return t
		}
	}
	return nil
}

// Native returns the table of a GOARCH's native ABI (AMD64 for "amd64"),
// nil for an architecture without one here.
func Native(goarch string) *Table {
	for _, t := range Tables {
		if t.GOARCH == goarch {
			return t
		}
	}
	return nil
}

// Compat returns the table of the 32-bit ABI a 64-bit kernel of goarch
// also runs: I386 for "amd64", ARM for "arm64", nil otherwise.
func Compat(goarch string) *Table {
	switch goarch {
	case "amd64":
		return I386
	case "arm64":
		return ARM
	}
	return nil
}
