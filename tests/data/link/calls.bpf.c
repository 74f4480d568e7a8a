// Subprograms (static, global, callbacks), maps of every reference style,
// global data sections and kconfig externs.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

extern int CONFIG_HZ __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_NO_SUCH_OPTION __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak;
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern int LINUX_UNKNOWN_THING __kconfig __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} inner1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner1 },
};

int tail_target(void *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__array(values, int (void *));
} jmp_table SEC(".maps") = {
	.values = { [1] = (void *)&tail_target },
};

u64 data_a = 1, data_b = 2;
const volatile u64 ro_vals[4] = {10, 20, 30, 40};
u64 zeroes[8];
u64 custom_x SEC(".data.custom") = 5;
const char fmt[] = "hz %d\n";

static __noinline u64 leaf(u64 x)
{
	return x * 3 + data_b;
}

static __noinline u64 mid(u64 x)
{
	u32 k = x;
	u64 *v = bpf_map_lookup_elem(&counts, &k);
	return leaf(x) + (v ? *v : 0) + ro_vals[x & 3];
}

__noinline int global_helper(int x)
{
	zeroes[x & 7] += 1;
	return x + CONFIG_HZ;
}

static int loop_cb(u32 idx, void *ctx)
{
	u64 *acc = ctx;
	*acc += leaf(idx);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int main_a(void *ctx)
{
	u64 acc = 0;
	u32 k = 0;
	void *in;

	acc += mid(data_a);
	acc += global_helper(1);
	bpf_loop(4, loop_cb, &acc, 0);
	in = bpf_map_lookup_elem(&outer, &k);
	if (in)
		bpf_map_lookup_elem(in, &k);
	if (CONFIG_BPF_SYSCALL && LINUX_KERNEL_VERSION > 0)
		zeroes[1] = CONFIG_NO_SUCH_OPTION + LINUX_HAS_SYSCALL_WRAPPER;
	zeroes[2] = CONFIG_DEFAULT_HOSTNAME[0] + LINUX_HAS_BPF_COOKIE + LINUX_UNKNOWN_THING;
	custom_x = acc;
	bpf_trace_printk(fmt, sizeof(fmt), CONFIG_HZ);
	bpf_tail_call(ctx, &jmp_table, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int main_b(void *ctx)
{
	/* the same subprograms in another order: they land at other offsets */
	u64 acc = leaf(2);
	acc += global_helper(2);
	acc += mid(acc);
	data_b = acc;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_gettid")
int tail_target(void *ctx)
{
	zeroes[3]++;
	return 0;
}

SEC("?tracepoint/syscalls/sys_enter_getuid")
int not_loaded(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	return BPF_CORE_READ(t, pid) + leaf(1);
}
