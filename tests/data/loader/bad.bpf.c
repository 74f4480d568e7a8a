/* Programs the verifier must reject; both off by default (SEC("?...")). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
char LICENSE[] SEC("license") = "GPL";
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8);
         __type(key, __u32); __type(value, __u64); } counts SEC(".maps");

SEC("?tracepoint/syscalls/sys_enter_getppid")
int null_deref(void *ctx)
{
	__u32 key = 1;
	__u64 *value = bpf_map_lookup_elem(&counts, &key);
	*value += 1;	/* no NULL check: rejected */
	return 0;
}

struct task_struct___missing { int no_such_field_xyz; } __attribute__((preserve_access_index));

SEC("?tracepoint/syscalls/sys_enter_getppid")
int bad_core(void *ctx)
{
	struct task_struct___missing *t = (void *)bpf_get_current_task();
	return BPF_CORE_READ(t, no_such_field_xyz);	/* unguarded: poisoned */
}
