/* Map-in-map and prog array with initial slots. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";

struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4);
               __type(key, __u32); __type(value, __u64); };
struct inner inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = { .values = { [0] = &inner_a, [2] = &inner_b } };

SEC("xdp") int tail_target(struct xdp_md *ctx) { return XDP_TX; }

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jumps SEC(".maps") = { .values = { [1] = (void *)&tail_target } };

SEC("xdp")
int entry(struct xdp_md *ctx)
{
	__u32 k = 2, i = 0;
	void *m = bpf_map_lookup_elem(&outer, &k);
	if (m) {
		__u64 *v = bpf_map_lookup_elem(m, &i);
		if (v) *v += 1;
	}
	bpf_tail_call(ctx, &jumps, 1);
	return XDP_PASS;
}
