package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a bytes.Buffer safe to read while run writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hasRow reports whether out has a row for local with this process.
func hasRow(out, proto, local string) bool {
	me := strconv.Itoa(os.Getpid())
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[0] == proto && f[1] == local && f[4] == me {
			return true
		}
	}
	return false
}

func TestTableAndWatch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read fd tables")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := newResolver(50 * time.Millisecond)
	defer r.Close()
	var out syncBuf
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, r, true, 50*time.Millisecond) }()

	deadline := time.Now().Add(4 * time.Second)
	for !hasRow(out.String(), "tcp", l.Addr().String()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !hasRow(out.String(), "tcp", l.Addr().String()) {
		t.Fatalf("listener %v not in the table:\n%s", l.Addr(), out.String())
	}
	// A socket made after the table: --watch prints it.
	u, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skip(err)
	}
	defer u.Close()
	for !hasRow(out.String(), "udp6", u.LocalAddr().String()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !hasRow(out.String(), "udp6", u.LocalAddr().String()) {
		t.Fatalf("new socket %v not printed by watch:\n%s", u.LocalAddr(), out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
