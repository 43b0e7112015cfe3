package cfgtext

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestQuote(t *testing.T) {
	cases := []struct{ in, want string }{
		{"abc", `"abc"`},
		{strings.Repeat("a", ExcerptBytes), `"` + strings.Repeat("a", ExcerptBytes) + `"`},
		{strings.Repeat("a", 100<<20), `"` + strings.Repeat("a", ExcerptBytes) + `"... (104857600 bytes)`},
		// cut at a character boundary: 63 bytes of "a", then "é" (2 bytes)
		{strings.Repeat("a", 63) + strings.Repeat("é", 10), `"` + strings.Repeat("a", 63) + `"... (83 bytes)`},
	}
	for _, c := range cases {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%d bytes) = %s, want %s", len(c.in), got, c.want)
		}
	}
	if got, want := Clip(strings.Repeat("a", 100)), strings.Repeat("a", 64)+"... (100 bytes)"; got != want {
		t.Errorf("Clip = %s, want %s", got, want)
	}
	if got := Clip("syscalls[0]"); got != "syscalls[0]" {
		t.Errorf("Clip = %s", got)
	}
}

// TestReadFile: a file over MaxBytes is refused after reading MaxBytes+1
// bytes at most, whatever its size.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, make([]byte, MaxBytes), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(ok); err != nil || len(data) != MaxBytes {
		t.Fatalf("%d bytes, %v", len(data), err)
	}
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("method: aaaa"); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100 << 20); err != nil { // sparse: no 100 MB written
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = ReadFile(big)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) || err.Error() != "too large: 104857600 bytes; at most 4194304 (4 MiB)" {
		t.Fatalf("error %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("reading a 100 MB file allocated %d bytes", alloc)
	}
	if _, err := ReadFile("/dev/zero"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("/dev/zero: %v", err)
	}
	if err := Check(make([]byte, MaxBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Check: %v", err)
	}
}

// TestYAMLSyntax: the line of a YAML syntax error is the problem's, not
// the line where the enclosing block began (yaml.v3's).
func TestYAMLSyntax(t *testing.T) {
	cases := []struct {
		doc     string
		line    int
		problem string
	}{
		// a key indented less than its mapping, on line 6 (yaml.v3: line 1)
		{"setuid:\n  enabled: true\n  rules:\n    - rule: R\n      event: uid == 0\n   scope: x\n", 6, "did not find expected key"},
		// (yaml.v3: line 3)
		{"setuid:\n  enabled: true\n  rules:\n    - rule: R\n     event: uid == 0\n    - rule: S\n", 5, "did not find expected '-' indicator"},
		{"a: 1\nb: 2\nc:\n  d: 1\n  e: 2\n e: 3\nf: 4\n", 6, "did not find expected key"},
		{"a: 1\nb: c: d\n", 2, "mapping values are not allowed in this context"},
		{"a: 1\n\tb: 2\n", 2, "found a tab character that violates indentation"},
		{"a: 1\nb: *x\n", 2, "unknown anchor 'x' referenced"},
		{"a: 1\n- b\n", 2, "did not find expected key"},
		{"a: [1, 2\n", 1, "did not find expected ',' or ']'"},
	}
	for _, c := range cases {
		var n yaml.Node
		err := yaml.Unmarshal([]byte(c.doc), &n)
		if err == nil {
			t.Fatalf("%q parsed", c.doc)
		}
		line, problem := YAMLSyntax([]byte(c.doc), err)
		if line != c.line || problem != c.problem {
			t.Errorf("%q (%v): line %d %q, want line %d %q", c.doc, err, line, problem, c.line, c.problem)
		}
	}
}

// TestYAMLSyntaxLarge: over SyntaxSearchBytes, the line is yaml.v3's (no
// search, which would take seconds).
func TestYAMLSyntaxLarge(t *testing.T) {
	var b strings.Builder
	b.WriteString("a:\n")
	for i := 0; b.Len() <= SyntaxSearchBytes; i++ {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	b.WriteString(" bad: 1\n")
	var n yaml.Node
	err := yaml.Unmarshal([]byte(b.String()), &n)
	if err == nil {
		t.Fatal("parsed")
	}
	line, problem := YAMLSyntax([]byte(b.String()), err)
	if want := fmt.Sprintf("yaml: line %d: %s", line, problem); err.Error() != want {
		t.Errorf("line %d %q; yaml.v3 said %v", line, problem, err)
	}
}

// TestScalar: every byte of a value maps to its place in the file, in
// each scalar style.
func TestScalar(t *testing.T) {
	cases := []struct {
		name, doc, token string
		line, column     int
	}{
		{"plain", "k: uid == 0 AND nme == 1\n", "nme", 1, 17},
		{"plain multi-line", "k: uid == 0 AND\n   euid == 0 AND\n     nme == 1\n", "nme", 3, 6},
		{"plain after an empty line", "k: uid == 0 AND\n\n   nme == 1\n", "nme", 3, 4},
		{"double-quoted multi-line", "k: \"uid == 0 AND\n   euid == 0 AND\n     nme == 1\"\n", "nme", 3, 6},
		{"double-quoted escapes", "k: \"path == \\\"/a\\\" AND\\\n   \\x6eme == 1\"\n", "nme", 2, 4},
		{"single-quoted", "k: 'a == ''x'' AND\n  nme == 1'\n", "nme", 2, 3},
		{"literal", "k: |\n  uid == 0 AND\n    nme == 1\n", "nme", 3, 5},
		{"folded", "k: >-\n  uid == 0 AND\n  euid == 0 AND\n    nme == 1\n", "nme", 4, 5},
		{"flow", "k: {a: 1, b: uid == 0 AND\n    nme == 1}\n", "nme", 2, 5},
		{"multibyte key", "é: uid == 0 AND nme == 1\n", "nme", 1, 18},
		{"tagged", "k: !!str uid == 0 AND nme == 1\n", "nme", 1, 23},
		{"anchored, quoted", "k: &a \"uid == 0 AND\n  nme == 1\"\n", "nme", 2, 3},
		{"block with a comment", "k: |-  # uid\n  uid == 0 AND nme == 1\n", "nme", 2, 16},
		{"escaped line break", "k: \"uid == 0 AND \\\n  nme == 1\"\n", "nme", 2, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(c.doc), &doc); err != nil {
				t.Fatal(err)
			}
			n := doc.Content[0].Content[1]
			if n.Kind == yaml.MappingNode {
				n = n.Content[3]
			}
			s := NewScalar(strings.Split(c.doc, "\n"), n)
			off := strings.Index(n.Value, c.token)
			line, col := s.At(off)
			if line != c.line || col != c.column {
				t.Errorf("%q in %q: line %d, column %d; want %d, %d", c.token, n.Value, line, col, c.line, c.column)
			}
			// the end maps to the column after the last byte
			lines := strings.Split(c.doc, "\n")
			el, ec := s.At(len(n.Value))
			if got := lines[el-1][ec-2 : ec-1]; got != "1" {
				t.Errorf("end at line %d, column %d: after %q", el, ec, got)
			}
		})
	}
}
