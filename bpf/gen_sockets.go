package bpf

// The socket attribution programs (sockets.c, sockets.h), loaded by
// sockets/ebpf. Rebuilt by `go generate ./bpf/...` like procmon.c.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -go-package bpf -target amd64,arm64 -cflags "-O2 -g -Wall" -type sock_owner -type conn_key Sockets sockets.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -go-package bpf -target bpfel -tags "!386,!amd64,!arm64" -cflags "-O2 -g -Wall" -type sock_owner -type conn_key Sockets sockets.c
