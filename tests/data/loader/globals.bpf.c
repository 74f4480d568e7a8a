/* Global data: .rodata set before load, .data/.bss read and written live. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";

const volatile __u64 target_tgid = 0;
const volatile __u64 magic = 0;
const volatile char label[8] = "none";
__u64 copied_magic = 0;        /* .bss */
__u64 hits = 0;                /* .bss */
__u64 step = 1;                /* .data */
__u64 seen_from_user = 0;      /* .bss: user space writes, program copies */
__u64 echo = 0;                /* .bss */
__u32 custom_val SEC(".data.custom") = 77;

SEC("tracepoint/syscalls/sys_enter_getppid")
int count(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	copied_magic = magic;
	hits += step;
	echo = seen_from_user + custom_val;
	return 0;
}
