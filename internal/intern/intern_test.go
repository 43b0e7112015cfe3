package intern

import (
	"runtime"
	"testing"
	"time"
	"unsafe"
)

func TestShareArgs(t *testing.T) {
	tab := NewArgs()
	a := tab.Share([]string{"nginx", "-g", "daemon off;"})
	b := tab.Share([]string{"nginx", "-g", "daemon off;"})
	c := tab.Share([]string{"nginx", "-g"})
	if a != b || a == c {
		t.Fatalf("equal lists not shared or different lists shared: %p %p %p", a, b, c)
	}
	if unsafe.StringData(a.V[0]) != unsafe.StringData(c.V[0]) {
		t.Error("element strings not interned")
	}
	if tab.Len() != 2 {
		t.Errorf("Len = %d, want 2", tab.Len())
	}
	runtime.KeepAlive(b)
}

func TestShareEnv(t *testing.T) {
	tab := NewMap()
	a := tab.Share(map[string]string{"A": "1", "B": "2"})
	b := tab.Share(map[string]string{"B": "2", "A": "1"})
	c := tab.Share(map[string]string{"A": "2", "B": "1"})
	if a != b || a == c {
		t.Fatal("environments not shared by content")
	}
	runtime.KeepAlive(b)
}

// TestFreed: a value no holder references leaves the table.
func TestFreed(t *testing.T) {
	tab := NewArgs()
	func() { _ = tab.Share([]string{"x", "y"}) }()
	deadline := time.Now().Add(5 * time.Second)
	for tab.Len() != 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if n := tab.Len(); n != 0 {
		t.Fatalf("Len = %d after the only holder dropped its value", n)
	}
	tab.mu.Lock()
	left := len(tab.m)
	tab.mu.Unlock()
	if left != 0 {
		t.Errorf("%d hash chains left behind", left)
	}
}

func TestString(t *testing.T) {
	a := String(string([]byte("/usr/bin/bash")))
	b := String(string([]byte("/usr/bin/bash")))
	if unsafe.StringData(a) != unsafe.StringData(b) || String("") != "" {
		t.Error("String does not return one copy")
	}
}

// TestBytes: Bytes gives the canonical string of the bytes, unchanged when
// the bytes are reused after, and allocates nothing for a string interned
// before.
func TestBytes(t *testing.T) {
	b := []byte("/usr/bin/true")
	s := Bytes(b)
	copy(b, "XXXX")
	if s != "/usr/bin/true" {
		t.Fatalf("Bytes = %q after its bytes were reused, want /usr/bin/true", s)
	}
	if again := Bytes([]byte("/usr/bin/true")); unsafe.StringData(again) != unsafe.StringData(s) || String("/usr/bin/true") != s {
		t.Error("equal bytes not given the canonical string")
	}
	if Bytes(nil) != "" {
		t.Error("Bytes(nil) not empty")
	}
	buf := []byte("/usr/bin/true")
	if n := testing.AllocsPerRun(100, func() { _ = Bytes(buf) }); n != 0 {
		t.Errorf("Bytes of an interned string: %v allocations, want 0", n)
	}
	runtime.KeepAlive(s)
}
