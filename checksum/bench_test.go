package checksum

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkHashThroughput(b *testing.B) {
	const size = 64 << 20
	buf := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(buf)
	p := filepath.Join(b.TempDir(), "big")
	writeFile(b, p, buf, 0o644)
	buf = nil
	for _, bc := range []struct {
		name  string
		algos []string
	}{
		{"all", nil},
		{"sha256", []string{HashSHA256}},
		{"sha1", []string{HashSHA1}},
		{"md5", []string{HashMD5}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			ctx := context.Background()
			for b.Loop() {
				// A fresh Hasher per iteration so nothing comes from the cache.
				res, err := New(Config{}).SumFile(ctx, p, bc.algos...)
				if err != nil {
					b.Fatal(err)
				}
				if res.Cached {
					b.Fatal("cached")
				}
			}
		})
	}
}

func BenchmarkCachedLookup(b *testing.B) {
	p := filepath.Join(b.TempDir(), "prog")
	writeFile(b, p, []byte("a small executable"), 0o755)
	h := New(Config{})
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		sum  func() (*Result, error)
	}{
		{"SumFile", func() (*Result, error) { return h.SumFile(ctx, p) }},
		{"SumPID", func() (*Result, error) { return h.Sum(ctx, Target{PID: os.Getpid()}) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := bc.sum(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				res, err := bc.sum()
				if err != nil {
					b.Fatal(err)
				}
				if !res.Cached {
					b.Fatal("not cached")
				}
			}
		})
	}
}
