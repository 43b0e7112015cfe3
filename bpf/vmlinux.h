/* The kernel's types for the architecture bpf2go compiles for (-target
 * amd64 defines __TARGET_ARCH_x86, -target arm64 __TARGET_ARCH_arm64): BTF
 * dumped as C with bpftool; see README.md. */
#if defined(__TARGET_ARCH_x86)
#include "vmlinux_x86.h"
#elif defined(__TARGET_ARCH_arm64)
#include "vmlinux_arm64.h"
#else
/* The generic object (bpf2go -target bpfel) for the other little-endian
 * GOARCHes: CO-RE relocates the fields the programs read; only the system
 * call registers are architecture-specific (syscall_arch.h). */
#include "vmlinux_x86.h"
#endif
