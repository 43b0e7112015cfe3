package bpf

// The exit counter (exits.c), loaded by internal/exits. Rebuilt by
// `go generate ./bpf/...` like procmon.c.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -go-package bpf -target amd64,arm64 -cflags "-O2 -g -Wall" Exits exits.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -go-package bpf -target bpfel -tags "!386,!amd64,!arm64" -cflags "-O2 -g -Wall" Exits exits.c
