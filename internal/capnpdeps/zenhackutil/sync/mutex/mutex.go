// Package mutex is a value guarded by a sync.Mutex: the API of
// zenhack.net/go/util/sync/mutex that capnproto.org/go/capnp/v3 uses,
// implemented for zonestats (see the go.mod of this directory).
package mutex

import "sync"

// Mutex holds a value of type T that is only reachable while locked.
// The zero value holds the zero T, unlocked. A Mutex must not be copied
// after first use.
type Mutex[T any] struct {
	mu  sync.Mutex
	val T
}

// New returns a Mutex holding v.
func New[T any](v T) Mutex[T] {
	return Mutex[T]{val: v}
}

// Locked is a locked Mutex: its value is reachable until Unlock.
type Locked[T any] struct {
	m *Mutex[T]
}

// Lock locks m and returns the handle to its value.
func (m *Mutex[T]) Lock() *Locked[T] {
	m.mu.Lock()
	return &Locked[T]{m: m}
}

// Value returns a pointer to the guarded value; it must not be used after
// Unlock.
func (l *Locked[T]) Value() *T {
	return &l.m.val
}

// Unlock unlocks the Mutex; l must not be used afterwards.
func (l *Locked[T]) Unlock() {
	m := l.m
	l.m = nil
	m.mu.Unlock()
}

// With calls f with the value while m is locked.
func (m *Mutex[T]) With(f func(*T)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.val)
}

// With1 calls f with the value while m is locked and returns its result.
func With1[T, A any](m *Mutex[T], f func(*T) A) A {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(&m.val)
}

// With2 is With1 for a function of two results.
func With2[T, A, B any](m *Mutex[T], f func(*T) (A, B)) (A, B) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(&m.val)
}

// With3 is With1 for a function of three results.
func With3[T, A, B, C any](m *Mutex[T], f func(*T) (A, B, C)) (A, B, C) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(&m.val)
}

// With4 is With1 for a function of four results.
func With4[T, A, B, C, D any](m *Mutex[T], f func(*T) (A, B, C, D)) (A, B, C, D) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(&m.val)
}
