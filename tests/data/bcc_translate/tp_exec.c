#include <linux/sched.h>

struct event {
    u32 pid;
    char comm[TASK_COMM_LEN];
    char filename[64];
};
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    struct event ev = {};
    ev.pid = args->pid;
    bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
    TP_DATA_LOC_READ_STR(ev.filename, filename, sizeof(ev.filename));
    events.perf_submit(args, &ev, sizeof(ev));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    char path[64];
    bpf_probe_read_user_str(path, sizeof(path), args->filename);
    if (args->flags & 1)
        bpf_trace_printk("open %s\n", path);
    return 0;
}
