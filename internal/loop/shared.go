package loop

import "sync"

// Shared is a value made for its first user and closed after its last: a
// kernel object that several long-lived values use (a loaded BPF program).
// The zero Shared is ready to use.
type Shared[T any] struct {
	mu    sync.Mutex
	v     T
	users int
}

// Acquire returns the value, made with open for the first user; an error
// of open is returned and counts no user.
func (s *Shared[T]) Acquire(open func() (T, error)) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == 0 {
		v, err := open()
		if err != nil {
			return v, err
		}
		s.v = v
	}
	s.users++
	return s.v, nil
}

// Release drops one user; after the last it closes the value with close
// and returns close's error. A Release without an Acquire does nothing.
func (s *Shared[T]) Release(close func(T) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == 0 {
		return nil
	}
	if s.users--; s.users > 0 {
		return nil
	}
	v := s.v
	var zero T
	s.v = zero
	return close(v)
}
