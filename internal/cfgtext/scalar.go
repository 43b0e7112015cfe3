package cfgtext

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Scalar maps the bytes of a YAML scalar's value to their lines and
// columns (1-based; columns count bytes) in the file it was read from,
// whatever the scalar's style: YAML folds the line breaks of plain, quoted
// and folded scalars, drops their indentation and decodes escapes, so a
// value's offsets are not the file's. The zero Scalar maps nothing.
type Scalar struct {
	// line, column is where the scalar starts: the answer for any offset
	// when its text could not be followed.
	line, column int
	value        string
	// segs are runs of value bytes whose file columns follow each other
	// on one line, by value offset; nil when the text was not followed.
	segs []segment
}

type segment struct{ off, line, column int }

// NewScalar follows the text of scalar node n in the file's lines (the
// file split at "\n"). It needs nothing else of the file afterwards.
func NewScalar(lines []string, n *yaml.Node) *Scalar {
	s := &Scalar{line: n.Line, column: n.Column, value: n.Value}
	if n.Kind != yaml.ScalarNode || n.Line < 1 || n.Line > len(lines) {
		return s
	}
	src := &source{lines: lines, li: n.Line - 1}
	src.bi = byteIndex(lines[src.li], n.Column)
	for l := lines[src.li]; src.bi < len(l) && (l[src.bi] == '!' || l[src.bi] == '&'); {
		// a tag or an anchor before the value
		for src.bi < len(l) && !blank(l[src.bi]) {
			src.bi++
		}
		for src.bi < len(l) && blank(l[src.bi]) {
			src.bi++
		}
	}
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		src.li, src.bi = src.li+1, 0 // the content starts after the header line
	case n.Style&yaml.DoubleQuotedStyle != 0:
		src.bi++
		src.escapes = true
	case n.Style&yaml.SingleQuotedStyle != 0:
		src.bi++
		src.quotes = true
	}
	v := n.Value
	for i := 0; i < len(v); {
		if blank(v[i]) {
			i++
			continue
		}
		produced, line, col, ok := src.next()
		if !ok || !strings.HasPrefix(v[i:], produced) {
			s.segs = nil // not followed: every offset maps to the start
			return s
		}
		for k := range len(produced) {
			s.add(i+k, line, col)
		}
		// blanks after it take the columns after it, so that a gap
		// between tokens on one line does not start a segment.
		i += len(produced)
		for j := i; j < len(v) && blank(v[j]) && v[j] != '\n'; j++ {
			s.add(j, line, col+1+j-i)
		}
	}
	return s
}

// add records that value byte off is at line, col.
func (s *Scalar) add(off, line, col int) {
	if n := len(s.segs); n > 0 {
		g := s.segs[n-1]
		if g.line == line && g.column+(off-g.off) == col {
			return
		}
	}
	s.segs = append(s.segs, segment{off, line, col})
}

// At returns the file line and column of the value's byte at off (off may
// be the value's length: the end). A blank byte, or the end, maps to the
// column after the last non-blank byte before it.
func (s *Scalar) At(off int) (line, column int) {
	if s == nil {
		return 0, 0
	}
	if len(s.segs) == 0 {
		return s.line, s.column
	}
	last := len(strings.TrimRight(s.value, " \t\r\n")) - 1 // the last non-blank byte
	if off > last {
		line, column = s.At(last)
		return line, column + 1
	}
	g := s.segs[0]
	for _, h := range s.segs[1:] {
		if h.off > off {
			break
		}
		g = h
	}
	return g.line, g.column + off - g.off
}

// Offset returns the offset in value of a 1-based line and column of
// value (as the rules package reports them), or -1.
func Offset(value string, line, column int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(value[off:], '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	if off += column - 1; off < 0 || off > len(value) {
		return -1
	}
	return off
}

// source walks a scalar's text in the file, yielding the non-blank bytes
// it stands for in the value.
type source struct {
	lines   []string
	li, bi  int
	escapes bool // double-quoted: backslash escapes
	quotes  bool // single-quoted: '' is '
}

// next returns the next non-blank piece of the value the text stands for
// (one byte, or what an escape stands for) and the file position of its
// text. ok is false at the end of the file.
func (s *source) next() (produced string, line, col int, ok bool) {
	for s.li < len(s.lines) {
		l := s.lines[s.li]
		if s.bi >= len(l) {
			s.li, s.bi = s.li+1, 0
			continue
		}
		c := l[s.bi]
		if blank(c) {
			s.bi++
			continue
		}
		line, col = s.li+1, s.bi+1
		switch {
		case s.escapes && c == '\\':
			p, n := unescape(l[s.bi+1:])
			s.bi += 1 + n
			if p = strings.Trim(p, " \t\r\n"); p == "" {
				continue // an escaped blank or line break
			}
			return p, line, col, true
		case s.quotes && c == '\'' && strings.HasPrefix(l[s.bi:], "''"):
			s.bi += 2
			return "'", line, col, true
		}
		s.bi++
		return l[s.bi-1 : s.bi], line, col, true
	}
	return "", 0, 0, false
}

// unescape decodes the YAML double-quoted escape that starts rest (the
// text after the backslash), returning what it stands for and its length.
func unescape(rest string) (string, int) {
	if rest == "" {
		return "", 0 // an escaped line break
	}
	if n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[rest[0]]; n > 0 && len(rest) > n {
		if r, err := strconv.ParseUint(rest[1:1+n], 16, 32); err == nil {
			return string(rune(r)), 1 + n
		}
	}
	if p, ok := escapes[rest[0]]; ok {
		return p, 1
	}
	return rest[:1], 1
}

var escapes = map[byte]string{'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n",
	'v': "\v", 'f': "\f", 'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '/': "/", '\\': "\\",
	'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029"}

func blank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// byteIndex returns the byte index in l of 1-based column col, which
// yaml.v3 counts in characters.
func byteIndex(l string, col int) int {
	i := 0
	for n := 1; n < col && i < len(l); n++ {
		_, w := utf8.DecodeRuneInString(l[i:])
		i += w
	}
	return i
}
