// SPDX-License-Identifier: GPL-2.0
/* CO-RE relocation records of several kinds against local types (no
 * vmlinux.h needed): field offset/exists/size, type exists/size, enum value. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct thing {
	int a;
	long b;
	struct { char c[4]; } in;
} __attribute__((preserve_access_index));

enum colour { RED = 1, GREEN = 5 };

long out[6];

SEC("raw_tp/sys_enter")
int core_prog(void *ctx)
{
	struct thing *t = ctx;

	out[0] = BPF_CORE_READ(t, b);
	out[1] = bpf_core_field_exists(t->in.c);
	out[2] = bpf_core_field_size(t->a);
	out[3] = bpf_core_type_exists(struct thing);
	out[4] = bpf_core_type_size(struct thing);
	out[5] = bpf_core_enum_value(enum colour, GREEN);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
