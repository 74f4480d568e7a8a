// One field read whose root type has two flavors in the target BTF.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct ambig_pair {
	int a;
	int b;
} __attribute__((preserve_access_index));

long out;

SEC("raw_tp/sys_enter")
int read_b(void *ctx)
{
	struct ambig_pair *p = (void *)bpf_get_current_task();

	out = BPF_CORE_READ(p, b);
	return 0;
}
