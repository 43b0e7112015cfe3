/* The kernel's types for the architecture bpf2go compiles for (-target
 * amd64 defines __TARGET_ARCH_x86, -target arm64 __TARGET_ARCH_arm64): BTF
 * dumped as C with bpftool; see README.md. */
#if defined(__TARGET_ARCH_x86)
#include "vmlinux_x86.h"
#elif defined(__TARGET_ARCH_arm64)
#include "vmlinux_arm64.h"
#else
#error "vmlinux.h: build with bpf2go -target amd64 or arm64"
#endif
