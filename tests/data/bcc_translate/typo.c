#include <uapi/linux/ptrace.h>

BPF_HASH(counts, u32);

int count(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgidd();
    counts.increment(pid);
    return 0;
}
