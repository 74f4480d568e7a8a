struct data_t {
    u32 pid;
    u64 ts;
    char comm[16];
};
BPF_RINGBUF_OUTPUT(buffer, 8);
BPF_RINGBUF_OUTPUT(copies, 1);

RAW_TRACEPOINT_PROBE(sched_switch)
{
    struct task_struct *prev = (struct task_struct *)ctx->args[1];
    struct data_t *d = buffer.ringbuf_reserve(sizeof(struct data_t));
    if (!d)
        return 0;
    d->pid = prev->pid;
    d->ts = bpf_ktime_get_ns();
    bpf_probe_read_kernel_str(d->comm, sizeof(d->comm), prev->comm);
    copies.ringbuf_output(d, sizeof(*d), 0);
    buffer.ringbuf_submit(d, 0);
    return 0;
}
