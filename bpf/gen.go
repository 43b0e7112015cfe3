// Package bpf holds proctrack's eBPF programs: the CO-RE C sources
// (procmon.c, procmon.h), the vmlinux.h they are compiled against, and the
// bpf2go output (procmon_bpfel.go and procmon_bpfel.o), committed so that
// users build with CGO_ENABLED=0 and no clang. methods/ebpf loads them.
//
// Rebuild with `go generate ./bpf/...` (make generate); it needs clang,
// llvm-strip and the libbpf headers (see README.md).
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -go-package bpf -target amd64,arm64 -cflags "-O2 -g -Wall" -type rec_hdr -type creds_rec -type proc_rec -type exit_rec -type sys_rec -type lsm_rec -type exit_key -type bprm_val -type exe_val -type rule_op -type hook_table -type int_key -type str_key -type rule_hits Procmon procmon.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -go-package bpf -target bpfel -tags "!386,!amd64,!arm64" -cflags "-O2 -g -Wall" -type rec_hdr -type creds_rec -type proc_rec -type exit_rec -type sys_rec -type lsm_rec -type exit_key -type bprm_val -type exe_val -type rule_op -type hook_table -type int_key -type str_key -type rule_hits Procmon procmon.c
