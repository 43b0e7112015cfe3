package procmon

import (
	"os"
	"testing"

	"github.com/proctrack/proctrack/cache"
)

// BenchmarkIsInStoreByPIDCopy is the seed lookup of EventsStore, which
// copies the cached process into the ExecEventItem it returns, against the
// cache's own lookup, which does not.
func BenchmarkIsInStoreByPIDCopy(b *testing.B) {
	s := &EventsStore{cache.New(cache.Config{})}
	p := FindProcess(os.Getpid(), false)
	if p == nil {
		b.Fatal("this process not found")
	}
	s.Add(p)
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.IsInStoreByPID(p.ID); !ok {
				b.Fatal("not found")
			}
		}
	})
	b.Run("cache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.EventsStore.IsInStoreByPID(p.ID); !ok {
				b.Fatal("not found")
			}
		}
	})
}
