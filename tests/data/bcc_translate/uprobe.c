#include <uapi/linux/ptrace.h>

struct req {
    int id;
    long size;
    struct req *next;
};
BPF_HASH(sizes, int, long);

int probe_call(struct pt_regs *ctx, int fd, struct req *r)
{
    int id = r->id;
    long size = r->next->size;
    long arg = PT_REGS_PARM1(ctx);
    if (fd > 0)
        sizes.update(&id, &size);
    sizes.insert(&fd, &arg);
    return 0;
}

int probe_ret(struct pt_regs *ctx)
{
    long rc = PT_REGS_RC(ctx);
    int key = 0;
    sizes.update(&key, &rc);
    return 0;
}
