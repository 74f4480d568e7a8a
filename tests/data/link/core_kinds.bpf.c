// CO-RE relocation corpus: every relocation kind, flavors, bitfields,
// ENUM64, TYPE_MATCHES and relocations that must be poisoned on some kernels.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/* not in libbpf 1.1's bpf_core_read.h */
#define field_signed(f) __builtin_preserve_field_info(f, BPF_FIELD_SIGNED)
#define field_lshift(f) __builtin_preserve_field_info(f, BPF_FIELD_LSHIFT_U64)
#define field_rshift(f) __builtin_preserve_field_info(f, BPF_FIELD_RSHIFT_U64)

/* task_struct->state became __state in 5.14 */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

/* a made-up flavor: never matches, so its reads are poisoned */
struct task_struct___fake {
	int no_such_field;
} __attribute__((preserve_access_index));

/* mm_cid: int on 6.x hosts, missing on 5.10/6.1, a struct on 7.2 */
struct task_struct___cid {
	int mm_cid;
} __attribute__((preserve_access_index));

/* a local-only type for TYPE_EXISTS = 0 */
struct no_such_kernel_type {
	int a;
};

enum bpf_func_id___local {
	BPF_FUNC_get_attach_cookie___local = 174,
	BPF_FUNC_no_such_helper___local = 9999,
};

__u64 out[64] = {};
const volatile int filter_pid = 0;
int counter SEC(".data.custom") = 7;
long bss_val;

SEC("tracepoint/syscalls/sys_enter_getpid")
int fields(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct task_struct___old *to = (void *)t;
	struct task_struct___fake *tf = (void *)t;

	if (filter_pid && BPF_CORE_READ(t, tgid) != filter_pid)
		return 0;
	out[0] = BPF_CORE_READ(t, tgid);
	out[1] = BPF_CORE_READ(t, real_parent, pid);
	out[2] = bpf_core_field_size(t->comm);
	out[3] = bpf_core_field_exists(t->pid);
	out[4] = field_signed(t->pid);
	out[5] = bpf_core_field_offset(t->mm);
	if (bpf_core_field_exists(to->state))
		out[6] = BPF_CORE_READ(to, state);
	else
		out[6] = BPF_CORE_READ(t, __state);
	out[7] = BPF_CORE_READ_BITFIELD_PROBED(t, sched_reset_on_fork);
	out[8] = bpf_core_field_exists(tf->no_such_field);
	if (bpf_core_field_exists(tf->no_such_field))
		out[9] = BPF_CORE_READ(tf, no_such_field);
	out[10] = BPF_CORE_READ(t, mm, mmap_base);
	out[11] = BPF_CORE_READ(t, comm[3]);
	counter++;
	bss_val += out[0];
	return 0;
}

SEC("tp_btf/sched_switch")
int direct(u64 *ctx)
{
	struct task_struct *t = (void *)ctx[1];
	struct task_struct___cid *tc = (void *)t;

	out[20] = t->pid;
	out[21] = t->sched_reset_on_fork;
	out[22] = BPF_CORE_READ_BITFIELD(t, sched_reset_on_fork);
	out[23] = tc->mm_cid;            /* poisoned where mm_cid is missing or not an int */
	out[24] = field_lshift(t->sched_reset_on_fork);
	out[25] = field_rshift(t->sched_reset_on_fork);
	out[26] = field_signed(t->sched_reset_on_fork);
	out[27] = bpf_core_field_size(t->sched_reset_on_fork);
	return 0;
}

SEC("raw_tp/sys_enter")
int types(void *ctx)
{
	out[30] = bpf_core_type_id_local(struct task_struct);
	out[31] = bpf_core_type_id_kernel(struct task_struct);
	out[32] = bpf_core_type_exists(struct task_struct);
	out[33] = bpf_core_type_exists(struct no_such_kernel_type);
	out[34] = bpf_core_type_size(struct task_struct);
	out[35] = bpf_core_type_matches(struct task_struct___cid);
	out[36] = bpf_core_type_matches(struct list_head);
	out[37] = bpf_core_type_id_kernel(struct task_struct___old);
	out[38] = bpf_core_type_size(struct pt_regs);
	return 0;
}

SEC("raw_tp/sys_exit")
int enums(void *ctx)
{
	out[40] = bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_attach_cookie);
	out[41] = bpf_core_enum_value(enum bpf_func_id, BPF_FUNC_ktime_get_ns);
	out[42] = bpf_core_enum_value_exists(enum bpf_func_id___local, BPF_FUNC_no_such_helper___local);
	out[43] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_USER);
	out[44] = bpf_core_enum_value_exists(enum perf_callchain_context, PERF_CONTEXT_MAX);
	out[45] = bpf_core_enum_value(enum bpf_func_id___local, BPF_FUNC_get_attach_cookie___local);
	out[46] = bpf_core_type_matches(enum perf_callchain_context);
	return 0;
}
