struct lpm_key {
    u32 prefixlen;
    u32 addr;
};
struct item {
    u64 ts;
    u32 cpu;
};
BPF_LPM_TRIE(routes, struct lpm_key, u64, 128);
BPF_QUEUE(pending, struct item, 64);
BPF_STACK(undo, u32, 16);
BPF_TABLE("lru_hash", u32, u64, recent, 512);
BPF_PERCPU_HASH(per_cpu, u32, u32);

int tick(struct pt_regs *ctx)
{
    struct lpm_key k = {32, 0x0100007f};
    struct item it = {};
    u32 v = 7;
    u64 *hit = routes.lookup(&k);
    it.ts = bpf_ktime_get_ns();
    it.cpu = bpf_get_smp_processor_id();
    pending.push(&it, 0);
    undo.push(&v, BPF_EXIST);
    if (pending.pop(&it) == 0 && hit)
        recent.insert(&it.cpu, hit);
    undo.peek(&v);
    per_cpu.increment(v);
    return 0;
}
