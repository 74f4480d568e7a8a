#include <uapi/linux/ptrace.h>
#include <net/sock.h>
#include <bcc/proto.h>

struct conn_t {
    u32 saddr;
    u32 daddr;
    u16 dport;
    u16 family;
    u32 ppid;
};
BPF_PERF_OUTPUT(conns);

int kprobe__tcp_v4_connect(struct pt_regs *ctx, struct sock *sk)
{
    struct conn_t c = {};
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    c.family = sk->__sk_common.skc_family;
    if (c.family != AF_INET)
        return 0;
    c.saddr = sk->__sk_common.skc_rcv_saddr;
    c.daddr = sk->__sk_common.skc_daddr;
    c.dport = ntohs(sk->__sk_common.skc_dport);
    c.ppid = task->real_parent->tgid;
    conns.perf_submit(ctx, &c, sizeof(c));
    return 0;
}

int kretprobe__tcp_v4_connect(struct pt_regs *ctx)
{
    int ret = PT_REGS_RC(ctx);
    return ret != 0;
}

int syscall__execve(struct pt_regs *ctx, const char *filename)
{
    char buf[32];
    bpf_probe_read_user_str(buf, sizeof(buf), filename);
    return 0;
}
