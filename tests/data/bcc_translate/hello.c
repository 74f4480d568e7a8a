#include <uapi/linux/ptrace.h>

int hello(void *ctx)
{
    bpf_trace_printk("Hello, World! %d\n", 42);
    return 0;
}
