"""``bcc.containers``: the ``--cgroupmap``/``--mntnsmap`` filters of BCC tools.

Tools prepend ``filter_by_containers(args)`` to their C text and call
``container_should_be_filtered()`` in their probes.  Without a map path the
filter is a constant 0 the compiler folds away; with one, the probe looks the
current cgroup id (or mount namespace inode) up in a hash map pinned at that
path by the user, so only the listed containers are traced.
"""
from __future__ import annotations

_NO_CGROUP_FILTER = """
static inline int _cgroup_filter() { return 0; }
"""

_CGROUP_FILTER = """
BPF_TABLE_PINNED("hash", u64, u64, cgroupset, 1024, "%s");

static inline int _cgroup_filter() {
    u64 cgroupid = bpf_get_current_cgroup_id();
    return cgroupset.lookup(&cgroupid) == NULL;
}
"""

_NO_MNTNS_FILTER = """
static inline int _mntns_filter() { return 0; }
"""

# The tools that also declare struct mnt_namespace test MNT_NAMESPACE_DEFINED.
_MNTNS_FILTER = """
#include <linux/nsproxy.h>
#include <linux/mount.h>
#include <linux/ns_common.h>

/* fs/mount.h is private to the kernel: only the member read here is declared. */
struct mnt_namespace {
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 11, 0)
    atomic_t count;
#endif
    struct ns_common ns;
};
#define MNT_NAMESPACE_DEFINED

BPF_TABLE_PINNED("hash", u64, u32, mount_ns_set, 1024, "%s");

static inline int _mntns_filter() {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct nsproxy *nsproxy;
    struct mnt_namespace *mnt_ns;
    unsigned int inum;
    u64 ns_id;

    if (bpf_probe_read_kernel(&nsproxy, sizeof(nsproxy), &task->nsproxy))
        return 0;
    if (bpf_probe_read_kernel(&mnt_ns, sizeof(mnt_ns), &nsproxy->mnt_ns))
        return 0;
    if (bpf_probe_read_kernel(&inum, sizeof(inum), &mnt_ns->ns.inum))
        return 0;
    ns_id = (u64)inum;
    return mount_ns_set.lookup(&ns_id) == NULL;
}
"""

_SHOULD_FILTER = """
static inline int container_should_be_filtered() {
    return _cgroup_filter() || _mntns_filter();
}
"""


def filter_by_containers(args) -> str:
    """C text defining ``container_should_be_filtered()`` for a tool's parsed args.

    ``args.cgroupmap`` and ``args.mntnsmap`` are paths of pinned maps (or
    empty/None for no filtering)."""
    cgroupmap = getattr(args, "cgroupmap", None)
    mntnsmap = getattr(args, "mntnsmap", None)
    text = _CGROUP_FILTER % cgroupmap if cgroupmap else _NO_CGROUP_FILTER
    text += _MNTNS_FILTER % mntnsmap if mntnsmap else _NO_MNTNS_FILTER
    return text + _SHOULD_FILTER
