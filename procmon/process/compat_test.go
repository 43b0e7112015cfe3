package process

import (
	"errors"
	"io/fs"
	"testing"
)

func TestTreeInsertItemAndReadRoot(t *testing.T) {
	p := FindProcess(1, false)
	if p == nil {
		t.Skip("pid 1 not visible")
	}
	p.BuildTree()
	n := len(p.Tree)
	p.TreeInsertItem(p.Path, p.ID)
	if len(p.Tree) != n+1 || p.Tree[0].Key != p.Path || p.Tree[0].Value != 1 {
		t.Errorf("Tree after TreeInsertItem: %d items, first %+v", len(p.Tree), p.Tree[0])
	}
	p.Root = ""
	if err := p.ReadRoot(); err != nil && !errors.Is(err, fs.ErrPermission) {
		t.Fatal(err)
	} else if err == nil && p.Root == "" {
		t.Error("ReadRoot left Root empty")
	}
}
