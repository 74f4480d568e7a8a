/* A map pinned by name; PIN_ENTRIES lets a test build an incompatible twin. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#ifndef PIN_ENTRIES
#define PIN_ENTRIES 16
#endif
char LICENSE[] SEC("license") = "GPL";
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, PIN_ENTRIES);
         __type(key, __u32); __type(value, __u64);
         __uint(pinning, LIBBPF_PIN_BY_NAME); } shared SEC(".maps");

SEC("xdp") int use_shared(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&shared, &k);
	if (v) *v += 1;
	return XDP_PASS;
}
