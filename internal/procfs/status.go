package procfs

import (
	"bytes"
	"fmt"
	"strconv"
)

// Status holds the credential and identity lines of /proc/<pid>/status.
type Status struct {
	Name       string
	Tgid       int
	PPID       int
	UIDs       [4]uint32 // real, effective, saved, filesystem
	GIDs       [4]uint32 // real, effective, saved, filesystem
	Groups     []uint32  // supplementary groups
	NSpid      []int     // pid in each nested pid namespace, outermost first
	CapInh     uint64
	CapPrm     uint64
	CapEff     uint64
	CapBnd     uint64
	CapAmb     uint64
	NoNewPrivs bool
	Seccomp    int // 0 disabled, 1 strict, 2 filter
	// Have records which optional lines were present; kernels before 4.3
	// have no CapAmb and before 4.10 no NoNewPrivs.
	HaveCapAmb, HaveNoNewPrivs bool
}

// ReadStatus reads and parses /proc/<pid>/status.
func ReadStatus(root string, pid int) (*Status, error) {
	b, err := ReadFile(Path(root, pid, "status"))
	if err != nil {
		return nil, err
	}
	s, err := ParseStatus(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Path(root, pid, "status"), err)
	}
	return s, nil
}

// ParseStatus parses the content of /proc/<pid>/status. Unknown lines are
// ignored; a known line with a bad value is an error naming the line.
func ParseStatus(b []byte) (*Status, error) {
	s := &Status{}
	seen := 0
	for lineNo := 1; len(b) > 0; lineNo++ {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		var err error
		switch string(k) {
		case "Name":
			s.Name = unescapeName(v)
		case "Tgid":
			s.Tgid, err = strconv.Atoi(string(v))
		case "PPid":
			s.PPID, err = strconv.Atoi(string(v))
		case "Uid":
			err = parseIDs(v, &s.UIDs)
			seen |= 1
		case "Gid":
			err = parseIDs(v, &s.GIDs)
			seen |= 2
		case "Groups":
			for _, f := range bytes.Fields(v) {
				var g uint64
				if g, err = strconv.ParseUint(string(f), 10, 32); err != nil {
					break
				}
				s.Groups = append(s.Groups, uint32(g))
			}
		case "NSpid":
			for _, f := range bytes.Fields(v) {
				var p int
				if p, err = strconv.Atoi(string(f)); err != nil {
					break
				}
				s.NSpid = append(s.NSpid, p)
			}
		case "CapInh":
			s.CapInh, err = strconv.ParseUint(string(v), 16, 64)
		case "CapPrm":
			s.CapPrm, err = strconv.ParseUint(string(v), 16, 64)
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(string(v), 16, 64)
			seen |= 4
		case "CapBnd":
			s.CapBnd, err = strconv.ParseUint(string(v), 16, 64)
		case "CapAmb":
			s.CapAmb, err = strconv.ParseUint(string(v), 16, 64)
			s.HaveCapAmb = true
		case "NoNewPrivs":
			s.NoNewPrivs = string(v) == "1"
			s.HaveNoNewPrivs = true
		case "Seccomp":
			s.Seccomp, err = strconv.Atoi(string(v))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d (%s): %v", ErrMalformed, lineNo, k, err)
		}
	}
	if seen != 7 {
		return nil, fmt.Errorf("%w: missing Uid, Gid or CapEff line", ErrMalformed)
	}
	return s, nil
}

func parseIDs(v []byte, dst *[4]uint32) error {
	f := bytes.Fields(v)
	if len(f) != 4 {
		return fmt.Errorf("want 4 ids, got %d", len(f))
	}
	for i := range f {
		id, err := strconv.ParseUint(string(f[i]), 10, 32)
		if err != nil {
			return err
		}
		dst[i] = uint32(id)
	}
	return nil
}

// unescapeName undoes the escaping the kernel applies to the Name line
// ("\n" and "\\"), so it equals the comm.
func unescapeName(v []byte) string {
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v)
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			switch v[i+1] {
			case 'n':
				out = append(out, '\n')
				i++
				continue
			case '\\':
				out = append(out, '\\')
				i++
				continue
			}
		}
		out = append(out, v[i])
	}
	return string(out)
}
