// SPDX-License-Identifier: GPL-2.0
/* A kitchen-sink object for the ELF reader tests: several SEC kinds, static and
 * global subprograms, BTF-defined maps of every shape libbpf parses, global data
 * in every section kind, and .kconfig/.ksyms externs. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>


struct val { __u64 a; __u32 b; };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, 4);
	__uint(value_size, 8);
	__uint(map_flags, BPF_F_RDONLY_PROG);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 5000);
} rb SEC(".maps");

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, int);
} inner1 SEC(".maps"), inner2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, int);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [0] = &inner2, [2] = &inner1 },
};

int tail_a(void *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jmp SEC(".maps") = {
	.values = { [1] = (void *)&tail_a },
};

int counter = 7;
static volatile int hidden_counter;
__attribute__((visibility("hidden"))) int hidden_global = 3;
const volatile int limit = 42;
static const char greeting[] = "hello %d";
__u64 zeroes[4];
int custom_val SEC(".data.custom") = 9;
const volatile char tag[8] SEC(".rodata.tag") = "abc";

extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_HZ_FOO __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak;
extern __u64 CONFIG_HZ __kconfig __weak;
extern unsigned char CONFIG_CHAR_THING __kconfig __weak;
extern const void bpf_prog_active __ksym __weak;

static __noinline int helper_static(int x)
{
	return x * 2 + hidden_counter;
}

__noinline int helper_global(int x)
{
	return x + counter;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	__u32 key = 0;
	struct val *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		v->a += helper_static(limit) + helper_global(hidden_global);
	zeroes[1] = custom_val + tag[0] + LINUX_KERNEL_VERSION + CONFIG_BPF_SYSCALL;
	zeroes[2] = CONFIG_HZ + CONFIG_HZ_FOO + CONFIG_DEFAULT_HOSTNAME[0] + CONFIG_CHAR_THING;
	zeroes[3] = (__u64)&bpf_prog_active;
	bpf_printk("pid %d", key);
	bpf_trace_printk(greeting, sizeof(greeting), 1);
	return 0;
}

SEC("?raw_tp/sys_enter")
int raw_enter(void *ctx)
{
	return helper_static(1);
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp, 1);
	return XDP_PASS;
}

SEC("xdp")
int tail_a(void *ctx)
{
	return XDP_DROP;
}

SEC("socket")
int sock_filter(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
