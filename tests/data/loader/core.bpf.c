/* kernel-matrix.md Appendix D: tracepoint + tp_btf with CO-RE reads. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16);
         __type(key, __u32); __type(value, __u64); } out SEC(".maps");
#define TARGET 15 /* out[15] = tgid to filter on, written by user space */
static __always_inline void put(__u32 k, __u64 v) { bpf_map_update_elem(&out, &k, &v, BPF_ANY); }
static __always_inline int is_target(__u64 tgid)
{ __u32 k = TARGET; __u64 *w = bpf_map_lookup_elem(&out, &k); return w && *w == tgid; }

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_probe(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	__u64 tgid = BPF_CORE_READ(t, tgid);
	if (!is_target(tgid)) return 0;
	put(0, tgid);
	put(1, BPF_CORE_READ(t, real_parent, tgid));
	put(2, bpf_core_field_exists(t->mm_cid));                 /* 6.4+ only */
	if (bpf_core_field_exists(t->mm_cid)) put(3, BPF_CORE_READ(t, mm_cid)); else put(3, 0xdead);
	put(4, bpf_core_enum_value_exists(enum bpf_prog_type, BPF_PROG_TYPE_NETFILTER));
	put(5, bpf_core_type_size(struct task_struct));
	put(6, BPF_CORE_READ_BITFIELD_PROBED(t, in_execve));
	put(7, bpf_core_field_offset(struct task_struct, tgid));
	return 0;
}

SEC("tp_btf/sys_enter")                  /* direct loads -> LDX off relocations */
int BPF_PROG(btf_probe, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	if (id != 110 /* __NR_getppid */ || !is_target(t->tgid)) return 0;
	put(8, t->tgid); put(9, t->real_parent->tgid);
	put(10, BPF_CORE_READ_BITFIELD(t, in_execve)); put(11, t->prio);
	return 0;
}
