// Package sysnum holds the Linux system call tables proctrack decodes and
// filters with, one per architecture: x86_64 and its 32-bit ABI i386, and
// aarch64 and its 32-bit ABI arm (AArch32). The eBPF tracepoint tier fills
// its filters and names what it reports from them, the audit method names
// the syscalls of audit records with them, and seccomp checks the names of
// its allow lists against them.
//
// The tables are generated, not typed: `go generate ./internal/sysnum`
// (make generate) runs ./gen, which reads the SYS_* constants of
// golang.org/x/sys/unix's zsysnum_linux_{amd64,386,arm64,arm}.go (the
// kernel's own numbers, taken by x/sys from the uapi headers) in the module
// cache: nothing is fetched.
package sysnum

//go:generate go run ./gen -o zsysnum.go
