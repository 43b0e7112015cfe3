package process

import (
	"errors"
	"io/fs"
	"reflect"
	"testing"
)

// TestCopyIntoEveryField: CopyInto copies every exported field, so a field
// added to Process without adding it to CopyInto fails here.
func TestCopyIntoEveryField(t *testing.T) {
	src := &Process{}
	v := reflect.ValueOf(src).Elem()
	for i := 0; i < v.NumField(); i++ {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		setNonZero(t, v.Type().Field(i).Name, v.Field(i))
	}
	c := src.Clone()
	cv := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.IsExported() && !reflect.DeepEqual(v.Field(i).Interface(), cv.Field(i).Interface()) {
			t.Errorf("CopyInto does not copy %s", f.Name)
		}
	}
	c.Path = "/changed"
	if src.Path == "/changed" {
		t.Error("the copy's Path is the original's")
	}
	src.RLock()
	if !c.mu.TryLock() {
		t.Error("the copy's lock is held while the original is read-locked")
	} else {
		c.mu.Unlock()
	}
	src.RUnlock()
}

// setNonZero gives v a value other than its zero value.
func setNonZero(t *testing.T, name string, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int8, reflect.Int16:
		v.SetInt(7)
	case reflect.Uint64, reflect.Uint32, reflect.Uint8, reflect.Uint16, reflect.Uint:
		v.SetUint(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.Zero(v.Type().Key()), reflect.Zero(v.Type().Elem()))
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				setNonZero(t, name+"."+v.Type().Field(i).Name, v.Field(i))
			}
		}
	default:
		t.Fatalf("field %s: kind %s not handled by the test", name, v.Kind())
	}
}

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
