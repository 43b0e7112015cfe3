// Package cfgtext holds what proctrack's readers of configuration files
// (procmon's YAML configuration, seccomp policies, the rule language)
// share: the size cap checked before anything is parsed, short excerpts of
// the values quoted in errors, the real line of a YAML syntax error, and
// the file position of each byte of a YAML scalar's value.
package cfgtext

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MaxBytes is the largest configuration file read or parsed: 4 MiB. A
// configuration of any real size is a few KiB; the cap bounds the memory
// a bad file can make a parser take (yaml.v3 takes several times a
// document's size).
const MaxBytes = 4 << 20

// ErrTooLarge is matched by the error for a file or document over
// MaxBytes.
var ErrTooLarge = errors.New("too large")

// ReadFile reads the file at path, refusing (with an error matching
// ErrTooLarge) one over MaxBytes: a regular file by its size, before
// reading it, anything else after reading at most MaxBytes+1 bytes. The
// error for a file over the cap does not name it; others are os's.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxBytes {
		return nil, tooLarge(strconv.FormatInt(st.Size(), 10))
	}
	// A file that is not regular (or grows) is read up to the cap.
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBytes {
		return nil, tooLarge("more than " + strconv.Itoa(MaxBytes))
	}
	return data, nil
}

func tooLarge(size string) error {
	return fmt.Errorf("%w: %s bytes; at most %d (4 MiB)", ErrTooLarge, size, MaxBytes)
}

// Check returns an error matching ErrTooLarge when data is over MaxBytes.
func Check(data []byte) error {
	if len(data) > MaxBytes {
		return fmt.Errorf("%w: %d bytes; at most %d (4 MiB)", ErrTooLarge, len(data), MaxBytes)
	}
	return nil
}

// ExcerptBytes is the most bytes of a value Quote shows.
const ExcerptBytes = 64

// Quote returns s quoted as strconv.Quote does when it has at most
// ExcerptBytes bytes; a longer s is cut to its first ExcerptBytes bytes (at
// a character boundary) and followed by "..." and its length:
// "aaaa..."... (1048576 bytes).
func Quote(s string) string {
	if len(s) <= ExcerptBytes {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:cut(s)]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// Clip returns s unquoted when it has at most ExcerptBytes bytes, else cut
// as Quote cuts it and followed by "..." and its length.
func Clip(s string) string {
	if len(s) <= ExcerptBytes {
		return s
	}
	return s[:cut(s)] + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// cut returns where Quote and Clip cut s: at most ExcerptBytes bytes, at a
// character boundary.
func cut(s string) int {
	n := ExcerptBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// SyntaxSearchBytes is the largest document YAMLSyntax searches for the
// line of a syntax error; a larger one gets the line yaml.v3 reports.
const SyntaxSearchBytes = 64 << 10

// YAMLSyntax returns the line and the problem of err, the error yaml.v3
// returned for data. yaml.v3 puts in its message the line where the
// enclosing block started rather than the line of the problem (a
// mis-indented key on line 6 of a mapping begun on line 1 is "line 1"), and
// none for some errors. For a document of at most SyntaxSearchBytes the
// line returned is the first whose end makes the document fail with the
// same problem, found by parsing prefixes of the document cut at line ends:
// a binary search from yaml.v3's line (never after the problem's), about
// log2(lines) parses, on this error path only. A configuration is a few
// KiB; a larger document gets yaml.v3's line, since yaml.v3 parses about
// 1 MB/s and the search would take seconds.
func YAMLSyntax(data []byte, err error) (line int, problem string) {
	line, problem = yamlProblem(err)
	if len(data) > SyntaxSearchBytes {
		return line, problem
	}
	// ends[k-1] is the length of the document's first k lines.
	var ends []int
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	fails := func(k int) bool {
		var n yaml.Node
		err := yaml.Unmarshal(data[:ends[k-1]], &n)
		if err == nil {
			return false
		}
		_, p := yamlProblem(err)
		return p == problem
	}
	lo, hi := max(line, 1), len(ends)
	if lo > hi || !fails(hi) {
		return line, problem
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, problem
}

// yamlProblem splits a yaml.v3 error message into its line (0 when it has
// none) and its problem.
func yamlProblem(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, aerr := strconv.Atoi(n); aerr == nil {
				return l, after
			}
		}
	}
	return 0, msg
}
