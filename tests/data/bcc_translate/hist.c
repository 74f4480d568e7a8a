#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

BPF_HASH(start, u32);
BPF_HISTOGRAM(dist);
BPF_HISTOGRAM(dist_by_pid, u32, 128);
BPF_ARRAY(totals, u64, 4);
BPF_PERCPU_ARRAY(cpu_counts, u32, 2);

int do_entry(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    start.update(&pid, &ts);
    return 0;
}

int do_return(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid();
    u64 *tsp = start.lookup(&pid);
    int zero = 0;
    if (tsp == 0)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *tsp;
    dist.increment(bpf_log2l(delta / 1000));
    dist_by_pid.atomic_increment(pid, 2);
    u64 *total = totals.lookup(&zero);
    if (total)
        lock_xadd(total, delta);
    u32 *c = cpu_counts.lookup(&zero);
    if (c)
        (*c)++;
    start.delete(&pid);
    return 0;
}
