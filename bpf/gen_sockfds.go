package bpf

// The socket descriptor lister (sockfds.c), loaded by internal/sockfds.
// Rebuilt by `go generate ./bpf/...` like procmon.c.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -go-package bpf -target amd64,arm64 -cflags "-O2 -g -Wall" Sockfds sockfds.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -go-package bpf -target bpfel -tags "!386,!amd64,!arm64" -cflags "-O2 -g -Wall" Sockfds sockfds.c
