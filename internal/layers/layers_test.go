package layers

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/proctrack/proctrack/"

// rows reads ARCHITECTURE.md's table: the directories of each row, top
// first.
func rows(t *testing.T) [][]string {
	f, err := os.Open("../../ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dirRE := regexp.MustCompile("`([a-z0-9_./]+)/`")
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) < 4 {
			continue
		}
		var dirs []string
		for _, m := range dirRE.FindAllStringSubmatch(cells[2], -1) {
			dirs = append(dirs, m[1])
		}
		if len(dirs) > 0 {
			out = append(out, dirs)
		}
	}
	return out
}

// TestImportsRunDown lists every package with go list and checks that each
// imports only packages of rows below its own (or its own directory's
// children and parents within the row, as a command of its package).
func TestImportsRunDown(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	table := rows(t)
	rowOf := func(pkg string) (int, string) {
		best, dir := -1, ""
		for i, dirs := range table {
			for _, d := range dirs {
				if (pkg == d || strings.HasPrefix(pkg, d+"/")) && len(d) > len(dir) {
					best, dir = i, d
				}
			}
		}
		return best, dir
	}
	cmd := exec.Command(goTool, "list", "-json=ImportPath,Imports", module+"...")
	cmd.Dir = "../.."
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	n := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		pkg := strings.TrimPrefix(p.ImportPath, module)
		row, dir := rowOf(pkg)
		if row < 0 {
			t.Errorf("%s: in no row of ARCHITECTURE.md", pkg)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			irow, idir := rowOf(imp)
			sameDir := idir == dir
			if irow > row || (irow == row && sameDir) {
				continue
			}
			t.Errorf("%s (row %d, %s/) imports %s (row %d, %s/): not below it", pkg, row+1, dir, imp, irow+1, idir)
		}
	}
	if n < 10 {
		t.Fatalf("go list gave %d packages", n)
	}
}
