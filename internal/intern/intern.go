// Package intern shares equal values among cached processes so that ten
// thousand processes running the same few binaries with the same few
// environments cost what the distinct values cost, not ten thousand copies.
//
// Strings are interned with the standard library's unique package. Whole
// argument lists and environments are shared through a Table: equal values
// get the same *Ref, and a Ref is freed by the garbage collector once no
// cached process holds it (the table keeps only weak pointers).
package intern

import (
	"hash/maphash"
	"maps"
	"runtime"
	"slices"
	"sync"
	"unique"
	"unsafe"
	"weak"
)

// String returns the canonical copy of s.
func String(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// Bytes returns the canonical copy of the string b holds, copying b only
// when the string is not interned yet: a reader that makes a string of
// each read (a /proc link, a name) allocates nothing for one it made
// before. b may be reused after the call.
func Bytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unique.Make(unsafe.String(unsafe.SliceData(b), len(b))).Value()
}

// Ref holds one shared value. Holders must treat V as read-only.
type Ref[T any] struct{ V T }

// Table shares equal values of type T. Its zero value is not usable; use
// NewArgs or NewMap.
type Table[T any] struct {
	mu    sync.Mutex
	m     map[uint64][]weak.Pointer[Ref[T]]
	hash  func(*maphash.Hash, T)
	equal func(a, b T) bool
	canon func(T) T // interns the parts of a value stored for the first time
	seed  maphash.Seed
	h     maphash.Hash // reused under mu (a Hash on the stack escapes through hash)
}

// Share returns the shared Ref for a value equal to v, storing a canonical
// copy of v when there is none.
func (t *Table[T]) Share(v T) *Ref[T] {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.h.SetSeed(t.seed)
	t.hash(&t.h, v)
	sum := t.h.Sum64()
	chain := t.m[sum]
	for _, w := range chain {
		if r := w.Value(); r != nil && t.equal(r.V, v) {
			return r
		}
	}
	r := &Ref[T]{V: t.canon(v)}
	t.m[sum] = append(chain, weak.Make(r))
	runtime.AddCleanup(r, t.forget, sum)
	return r
}

// forget drops the dead weak pointers of one hash chain.
func (t *Table[T]) forget(sum uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	chain := slices.DeleteFunc(t.m[sum], func(w weak.Pointer[Ref[T]]) bool { return w.Value() == nil })
	if len(chain) == 0 {
		delete(t.m, sum)
	} else {
		t.m[sum] = chain
	}
}

// Len returns the number of distinct values the table holds.
func (t *Table[T]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, chain := range t.m {
		for _, w := range chain {
			if w.Value() != nil {
				n++
			}
		}
	}
	return n
}

// NewArgs returns a table of argument lists.
func NewArgs() *Table[[]string] {
	return &Table[[]string]{
		m:    make(map[uint64][]weak.Pointer[Ref[[]string]]),
		seed: maphash.MakeSeed(),
		hash: func(h *maphash.Hash, v []string) {
			for _, s := range v {
				h.WriteString(s)
				h.WriteByte(0)
			}
		},
		equal: slices.Equal[[]string],
		canon: func(v []string) []string {
			out := make([]string, len(v))
			for i, s := range v {
				out[i] = String(s)
			}
			return out
		},
	}
}

// NewMap returns a table of string maps (environments, checksum sets).
func NewMap() *Table[map[string]string] {
	return &Table[map[string]string]{
		m:    make(map[uint64][]weak.Pointer[Ref[map[string]string]]),
		seed: maphash.MakeSeed(),
		hash: func(h *maphash.Hash, v map[string]string) {
			// Order-independent: sum of per-entry hashes.
			var sum uint64
			seed := h.Seed()
			for k, val := range v {
				sum += maphash.String(seed, k) ^ (maphash.String(seed, val) * 31)
			}
			var b [8]byte
			for i := range b {
				b[i] = byte(sum >> (8 * i))
			}
			h.Write(b[:])
		},
		equal: maps.Equal[map[string]string, map[string]string],
		canon: func(v map[string]string) map[string]string {
			out := make(map[string]string, len(v))
			for k, val := range v {
				out[String(k)] = String(val)
			}
			return out
		},
	}
}
