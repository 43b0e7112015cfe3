package audit

import (
	"encoding/binary"
	"os"
	"testing"
)

// GuardAudit is guardAudit for the external test package: it fails tb when
// the audit state (enabled, pid, backlog, rules) is not as it was at the end.
func GuardAudit(tb testing.TB) { guardAudit(tb) }

// WriteFloorRules writes the rules a Source installs, in the kernel's wire
// format, each preceded by its length (a native uint32), to path: the rules
// file of internal/floor's auditfloor, so that the C floor audits exactly
// what the method does. Their owner key names a live instance of this
// process until tb ends, so no Source takes them for leftovers meanwhile.
func WriteFloorRules(tb testing.TB, path string) {
	tb.Helper()
	owner, inst := newOwner()
	tb.Cleanup(func() { dropOwner(inst) })
	rules, err := buildRules(owner)
	if err != nil {
		tb.Fatal(err)
	}
	var b []byte
	for _, r := range rules {
		b = binary.NativeEndian.AppendUint32(b, uint32(len(r.wire)))
		b = append(b, r.wire...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
