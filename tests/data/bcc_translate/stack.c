#include <uapi/linux/ptrace.h>

struct key_t {
    u32 pid;
    int kernel_stack_id;
    int user_stack_id;
    char name[TASK_COMM_LEN];
};
BPF_HASH(counts, struct key_t, u64, 4096);
BPF_STACK_TRACE(stack_traces, 1000);

int on_event(struct pt_regs *ctx)
{
    struct key_t key = {};
    key.pid = bpf_get_current_pid_tgid() >> 32;
    key.kernel_stack_id = stack_traces.get_stackid(ctx, 0);
    key.user_stack_id = stack_traces.get_stackid(ctx, BPF_F_USER_STACK);
    bpf_get_current_comm(&key.name, sizeof(key.name));
    u64 zero = 0, *val = counts.lookup_or_try_init(&key, &zero);
    if (val)
        (*val)++;
    return 0;
}
