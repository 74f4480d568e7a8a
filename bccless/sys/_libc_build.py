"""cffi out-of-line ABI-mode definitions for the syscall layer.

Run ``python -m bccless.sys._libc_build`` to regenerate
``bccless/sys/_libc.py``.  The generated module is committed so that the warm
path imports only ``_cffi_backend``: no C compiler, no pycparser, no parsing of
this cdef at run time.  A test rebuilds it and compares, so the two never drift.

The attr structs mirror the per-command members of ``union bpf_attr`` and
``struct perf_event_attr`` from the kernel's uapi headers.  Pointer members are
``__aligned_u64`` in the uapi; they are declared ``void *`` here so that cffi
buffers can be stored without a Python-side pointer->int round trip.  That is
only layout-compatible on LP64 hosts, the only ones bccless supports.  Sizes
that are passed to the kernel are ``sizeof`` of these structs, so a field added
here is sent (zeroed) to every kernel: keep new fields at the end and zero
unless the caller asked for them, which older kernels accept.
"""
from __future__ import annotations

import sys

CDEF = r"""
long syscall(long number, ...);

/* BPF_MAP_CREATE */
struct bpf_map_create_attr {
    uint32_t map_type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    uint32_t inner_map_fd;
    uint32_t numa_node;
    char map_name[16];
    uint32_t map_ifindex;
    uint32_t btf_fd;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    uint32_t btf_vmlinux_value_type_id;
    uint64_t map_extra;
};

/* BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM, GET_NEXT_KEY, LOOKUP_AND_DELETE, FREEZE */
struct bpf_map_elem_attr {
    uint32_t map_fd;
    void *key;
    void *value;   /* next_key for GET_NEXT_KEY */
    uint64_t flags;
};

/* BPF_MAP_*_BATCH */
struct bpf_map_batch_attr {
    void *in_batch;
    void *out_batch;
    void *keys;
    void *values;
    uint32_t count;
    uint32_t map_fd;
    uint64_t elem_flags;
    uint64_t flags;
};

/* BPF_PROG_LOAD */
struct bpf_prog_load_attr {
    uint32_t prog_type;
    uint32_t insn_cnt;
    void *insns;
    void *license;
    uint32_t log_level;
    uint32_t log_size;
    void *log_buf;
    uint32_t kern_version;
    uint32_t prog_flags;
    char prog_name[16];
    uint32_t prog_ifindex;
    uint32_t expected_attach_type;
    uint32_t prog_btf_fd;
    uint32_t func_info_rec_size;
    void *func_info;
    uint32_t func_info_cnt;
    uint32_t line_info_rec_size;
    void *line_info;
    uint32_t line_info_cnt;
    uint32_t attach_btf_id;
    uint32_t attach_prog_fd;   /* union with attach_btf_obj_fd */
    uint32_t core_relo_cnt;
    void *fd_array;
    void *core_relos;
    uint32_t core_relo_rec_size;
    uint32_t log_true_size;
};

/* BPF_OBJ_PIN, BPF_OBJ_GET */
struct bpf_obj_attr {
    void *pathname;
    uint32_t bpf_fd;
    uint32_t file_flags;
};

/* BPF_PROG_ATTACH, BPF_PROG_DETACH */
struct bpf_prog_attach_attr {
    uint32_t target_fd;
    uint32_t attach_bpf_fd;
    uint32_t attach_type;
    uint32_t attach_flags;
    uint32_t replace_bpf_fd;
};

/* BPF_PROG_TEST_RUN */
struct bpf_test_run_attr {
    uint32_t prog_fd;
    uint32_t retval;
    uint32_t data_size_in;
    uint32_t data_size_out;
    void *data_in;
    void *data_out;
    uint32_t repeat;
    uint32_t duration;
    uint32_t ctx_size_in;
    uint32_t ctx_size_out;
    void *ctx_in;
    void *ctx_out;
    uint32_t flags;
    uint32_t cpu;
};

/* BPF_*_GET_NEXT_ID, BPF_*_GET_FD_BY_ID */
struct bpf_get_id_attr {
    uint32_t start_id;   /* prog_id / map_id / btf_id / link_id */
    uint32_t next_id;
    uint32_t open_flags;
};

/* BPF_OBJ_GET_INFO_BY_FD */
struct bpf_info_attr {
    uint32_t bpf_fd;
    uint32_t info_len;
    void *info;
};

/* BPF_RAW_TRACEPOINT_OPEN */
struct bpf_raw_tp_attr {
    void *name;
    uint32_t prog_fd;
};

/* BPF_BTF_LOAD */
struct bpf_btf_load_attr {
    void *btf;
    void *btf_log_buf;
    uint32_t btf_size;
    uint32_t btf_log_size;
    uint32_t btf_log_level;
    uint32_t btf_log_true_size;
};

/* BPF_LINK_CREATE: the kind-specific tail overlays offset 16 */
struct bpf_link_create_attr {
    uint32_t prog_fd;
    uint32_t target_fd;   /* or target_ifindex */
    uint32_t attach_type;
    uint32_t flags;
    union {
        uint32_t target_btf_id;
        struct { void *iter_info; uint32_t iter_info_len; } iter;
        struct { uint64_t bpf_cookie; } perf_event;
        struct {
            uint32_t flags; uint32_t cnt;
            void *syms; void *addrs; void *cookies;
        } kprobe_multi;
        struct { uint32_t target_btf_id; uint32_t pad; uint64_t cookie; } tracing;
        struct { uint32_t pf; uint32_t hooknum; int32_t priority; uint32_t flags; } netfilter;
        /* tcx, netkit and cgroup share this layout */
        struct { uint32_t relative_fd; uint32_t pad; uint64_t expected_revision; } rel;
        struct {
            void *path; void *offsets; void *ref_ctr_offsets; void *cookies;
            uint32_t cnt; uint32_t flags; uint32_t pid; uint32_t path_fd;
        } uprobe_multi;
    } u;
};

/* BPF_LINK_DETACH, BPF_ENABLE_STATS: a single u32 */
struct bpf_u32_attr {
    uint32_t value;
};

struct bpf_prog_info {
    uint32_t type;
    uint32_t id;
    uint8_t tag[8];
    uint32_t jited_prog_len;
    uint32_t xlated_prog_len;
    uint64_t jited_prog_insns;
    uint64_t xlated_prog_insns;
    uint64_t load_time;
    uint32_t created_by_uid;
    uint32_t nr_map_ids;
    void *map_ids;
    char name[16];
    uint32_t ifindex;
    uint32_t gpl_compatible;   /* bit 0 */
    uint64_t netns_dev;
    uint64_t netns_ino;
    uint32_t nr_jited_ksyms;
    uint32_t nr_jited_func_lens;
    uint64_t jited_ksyms;
    uint64_t jited_func_lens;
    uint32_t btf_id;
    uint32_t func_info_rec_size;
    uint64_t func_info;
    uint32_t nr_func_info;
    uint32_t nr_line_info;
    uint64_t line_info;
    uint64_t jited_line_info;
    uint32_t nr_jited_line_info;
    uint32_t line_info_rec_size;
    uint32_t jited_line_info_rec_size;
    uint32_t nr_prog_tags;
    uint64_t prog_tags;
    uint64_t run_time_ns;
    uint64_t run_cnt;
    uint64_t recursion_misses;
    uint32_t verified_insns;
    uint32_t attach_btf_obj_id;
    uint32_t attach_btf_id;
    uint32_t pad;
};

struct bpf_map_info {
    uint32_t type;
    uint32_t id;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    char name[16];
    uint32_t ifindex;
    uint32_t btf_vmlinux_value_type_id;
    uint64_t netns_dev;
    uint64_t netns_ino;
    uint32_t btf_id;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    uint32_t btf_vmlinux_id;
    uint64_t map_extra;
};

struct bpf_btf_info {
    uint64_t btf;
    uint32_t btf_size;
    uint32_t id;
    void *name;
    uint32_t name_len;
    uint32_t kernel_btf;
};

struct bpf_link_info {
    uint32_t type;
    uint32_t id;
    uint32_t prog_id;
    union {
        struct { void *tp_name; uint32_t tp_name_len; uint32_t pad; uint64_t cookie; } raw_tracepoint;
        struct {
            uint32_t attach_type; uint32_t target_obj_id; uint32_t target_btf_id;
            uint32_t pad; uint64_t cookie;
        } tracing;
        struct { uint64_t cgroup_id; uint32_t attach_type; } cgroup;
        struct { void *target_name; uint32_t target_name_len; uint32_t map_id; } iter;
        struct { uint32_t netns_ino; uint32_t attach_type; } netns;
        struct { uint32_t ifindex; uint32_t attach_type; } ifindexed;   /* xdp, tcx, netkit */
        struct { uint32_t pf; uint32_t hooknum; int32_t priority; uint32_t flags; } netfilter;
        struct {
            uint64_t addrs; uint32_t count; uint32_t flags; uint64_t missed; uint64_t cookies;
        } kprobe_multi;
        struct {
            uint64_t path; uint64_t offsets; uint64_t ref_ctr_offsets; uint64_t cookies;
            uint32_t path_size; uint32_t count; uint32_t flags; uint32_t pid;
        } uprobe_multi;
        struct {
            uint32_t type; uint32_t pad;
            void *name;           /* file_name / func_name / tp_name */
            uint32_t name_len;
            uint32_t offset;
            uint64_t a;           /* uprobe: cookie; kprobe: addr */
            uint64_t b;           /* uprobe: ref_ctr_offset; kprobe: missed */
            uint64_t c;           /* kprobe: cookie */
        } perf_event;
        struct { uint32_t type; uint32_t pad; uint64_t config; uint32_t ev_type; uint32_t pad2; uint64_t cookie; } perf_event_event;
        uint8_t raw[48];
    } u;
};

struct perf_event_attr {
    uint32_t type;
    uint32_t size;
    uint64_t config;
    uint64_t sample_period;    /* or sample_freq */
    uint64_t sample_type;
    uint64_t read_format;
    uint64_t flags;            /* the disabled:1, inherit:1, ... bitfield word */
    uint32_t wakeup_events;    /* or wakeup_watermark */
    uint32_t bp_type;
    uint64_t config1;          /* bp_addr / kprobe_func / uprobe_path */
    uint64_t config2;          /* bp_len / kprobe_addr / probe_offset */
    uint64_t branch_sample_type;
    uint64_t sample_regs_user;
    uint32_t sample_stack_user;
    int32_t clockid;
    uint64_t sample_regs_intr;
    uint32_t aux_watermark;
    uint16_t sample_max_stack;
    uint16_t reserved_2;
    uint32_t aux_sample_size;
    uint32_t reserved_3;
    uint64_t sig_data;
    uint64_t config3;
};
"""


def make_builder():
    """The FFIBuilder for ``bccless.sys._libc`` (imports cffi's parser: build time only)."""
    import cffi

    builder = cffi.FFI()
    builder.cdef(CDEF)
    builder.set_source("bccless.sys._libc", None)
    return builder


def emit(path: str) -> None:
    """Write the generated ABI-mode module to ``path``."""
    make_builder().emit_python_code(path)


if __name__ == "__main__":
    import os

    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "_libc.py")
    emit(target)
