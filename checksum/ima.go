package checksum

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// IMADigest is a file digest recorded by the kernel's Integrity Measurement
// Architecture.
type IMADigest struct {
	// Algorithm is the hash algorithm as IMA names it ("sha256", "sha1", ...).
	Algorithm string
	// Digest is the lowercase hex digest of the file contents.
	Digest string
	// Template is the measurement template ("ima-ng", "ima-sig",
	// "ima-modsig" or "ima").
	Template string
	// PCR is the TPM PCR the measurement was extended into.
	PCR int
	// Path is the file name recorded in the measurement.
	Path string
}

// imaCountFile is the securityfs file, next to the measurement list,
// holding the number of measurements.
const imaCountFile = "runtime_measurements_count"

// IMAList is an incrementally parsed IMA ASCII measurement list
// (ascii_runtime_measurements). The list is append-only, so after the first
// lookup only entries appended since the previous lookup are read: the
// parser remembers how many bytes it consumed and checks the file size (or,
// for the securityfs file whose size is always 0, the measurement count in
// runtime_measurements_count) to skip reading entirely when nothing was
// appended. An IMAList is safe for concurrent use.
type IMAList struct {
	path string

	mu       sync.Mutex
	dev, ino uint64
	offset   int64 // bytes of complete lines consumed
	count    int64 // measurement count at the last read; -1 when unknown
	entries  map[string]IMADigest
	parsed   int64 // total bytes parsed, for tests
}

// NewIMAList returns a list reading the measurement file at path. Nothing
// is read until the first lookup.
func NewIMAList(path string) *IMAList {
	return &IMAList{path: path, count: -1, entries: make(map[string]IMADigest)}
}

// Path returns the measurement list file name.
func (l *IMAList) Path() string { return l.path }

// Lookup returns the last measurement recorded for filePath, or nil when
// there is none. Reading the list may fail (for example when IMA is not
// enabled and the file does not exist), in which case the error wraps the
// underlying *os.PathError.
func (l *IMAList) Lookup(filePath string) (*IMADigest, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refresh(); err != nil {
		return nil, err
	}
	d, ok := l.entries[filePath]
	if !ok {
		return nil, nil
	}
	return &d, nil
}

// Len returns the number of distinct paths parsed so far.
func (l *IMAList) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// IMALookup reads the measurement list at listPath once and returns the
// last measurement recorded for filePath, or nil when there is none. Use an
// [IMAList] for repeated lookups.
func IMALookup(listPath, filePath string) (*IMADigest, error) {
	return NewIMAList(listPath).Lookup(filePath)
}

func (l *IMAList) reset() {
	l.offset, l.count = 0, -1
	l.entries = make(map[string]IMADigest)
}

// refresh parses the lines appended since the last call. l.mu is held.
func (l *IMAList) refresh() error {
	var st unix.Stat_t
	if err := unix.Stat(l.path, &st); err != nil {
		return fmt.Errorf("checksum: IMA list: %w", &os.PathError{Op: "stat", Path: l.path, Err: err})
	}
	if uint64(st.Dev) != l.dev || uint64(st.Ino) != l.ino {
		l.reset()
		l.dev, l.ino = uint64(st.Dev), uint64(st.Ino)
	}
	count := int64(-1)
	if size := int64(st.Size); size > 0 {
		// A regular file: its size tells whether anything was appended.
		if size == l.offset {
			return nil
		}
		if size < l.offset {
			l.reset() // truncated or rewritten
		}
	} else if b, err := os.ReadFile(filepath.Join(filepath.Dir(l.path), imaCountFile)); err == nil {
		// The securityfs file reports size 0; use the measurement count.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			if n == l.count {
				return nil
			}
			count = n
		}
	} else if l.offset > 0 {
		l.reset() // a regular file truncated to empty
	}

	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("checksum: IMA list: %w", err)
	}
	defer f.Close()
	if l.offset > 0 {
		if _, err := f.Seek(l.offset, io.SeekStart); err != nil {
			return fmt.Errorf("checksum: IMA list: %w", err)
		}
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// A trailing line without '\n' is incomplete (or still being
			// written); it is parsed on a later refresh.
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("checksum: IMA list: read %s: %w", l.path, err)
		}
		l.offset += int64(len(line))
		l.parsed += int64(len(line))
		if d, ok := parseIMALine(line[:len(line)-1]); ok {
			l.entries[d.Path] = d
		}
	}
	l.count = count
	return nil
}

// parseIMALine parses one line of the ASCII measurement list:
//
//	<pcr> <template-hash> ima-ng <algo>:<hex> <path>
//	<pcr> <template-hash> ima-sig <algo>:<hex> <path> [<sig-hex>]
//	<pcr> <template-hash> ima-modsig <algo>:<hex> <path> [<sig>] [<d-modsig>] [<modsig>]
//	<pcr> <template-hash> ima <sha1-hex> <path>
//
// Other templates and malformed lines are rejected.
func parseIMALine(line string) (IMADigest, bool) {
	var d IMADigest
	line = strings.TrimSuffix(line, "\r")
	f := strings.SplitN(line, " ", 5)
	if len(f) != 5 {
		return d, false
	}
	pcr, err := strconv.Atoi(f[0])
	if err != nil || pcr < 0 || f[0][0] == '+' {
		return d, false
	}
	if !isHex(f[1]) {
		return d, false
	}
	d.PCR, d.Template = pcr, f[2]
	rest := f[4]
	trailing := 0 // optional trailing fields after the path
	switch d.Template {
	case "ima":
		if len(f[3]) != 2*20 || !isHex(f[3]) {
			return d, false
		}
		d.Algorithm, d.Digest = "sha1", strings.ToLower(f[3])
	case "ima-ng", "ima-sig", "ima-modsig":
		algo, dig, ok := strings.Cut(f[3], ":")
		if !ok || algo == "" || !isHex(dig) {
			return d, false
		}
		d.Algorithm, d.Digest = algo, strings.ToLower(dig)
		switch d.Template {
		case "ima-sig":
			trailing = 1
		case "ima-modsig":
			trailing = 3
		}
	default:
		return d, false
	}
	// The kernel prints each template field preceded by a space, so an
	// empty signature leaves a trailing space. Strip up to `trailing`
	// trailing fields that are empty or look like signature data.
	for ; trailing > 0; trailing-- {
		i := strings.LastIndexByte(rest, ' ')
		if i < 0 {
			break
		}
		tail := rest[i+1:]
		if tail != "" && !isHex(tail) {
			if _, h, ok := strings.Cut(tail, ":"); !ok || !isHex(h) {
				break
			}
		}
		rest = rest[:i]
	}
	if rest == "" {
		return d, false
	}
	d.Path = rest
	return d, true
}

func isHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
