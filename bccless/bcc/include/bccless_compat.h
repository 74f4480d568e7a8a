/* bccless_compat.h - what BCC programs expect from BCC's helpers.h and the
 * kernel headers they include, on top of vmlinux.h and libbpf's headers.
 *
 * Included by every translated program (after vmlinux.h, bpf_helpers.h,
 * bpf_tracing.h, bpf_core_read.h and bpf_endian.h).  Only constants that BTF
 * cannot carry (preprocessor macros of the kernel headers) and BCC's own helper
 * macros live here; kernel types come from vmlinux.h so that every member
 * access is CO-RE relocated.
 */
#ifndef __BCCLESS_COMPAT_H
#define __BCCLESS_COMPAT_H

#if !defined(__TARGET_ARCH_x86)
#error "bccless: only __TARGET_ARCH_x86 is supported by the compat header"
#endif

#ifndef NULL
#define NULL ((void *)0)
#endif

/* ---- sparse annotations (empty for compilers, as in compiler_types.h) ---- */
#ifndef __user
#define __user
#endif
#ifndef __kernel
#define __kernel
#endif
#ifndef __force
#define __force
#endif
#ifndef __iomem
#define __iomem
#endif
#ifndef __rcu
#define __rcu
#endif
#ifndef __percpu
#define __percpu
#endif

/* ---- kernel header macros BCC tools use (absent from BTF) ---- */
#undef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#define NAME_MAX 255
#define PATH_MAX 4096
#define PERF_MAX_STACK_DEPTH 127
#define BPF_MAX_STACK_DEPTH PERF_MAX_STACK_DEPTH
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_ALL 0x0003
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021AD 0x88A8

#define AF_UNSPEC 0
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define AF_NETLINK 16
#define AF_PACKET 17
#define PF_UNSPEC AF_UNSPEC
#define PF_UNIX AF_UNIX
#define PF_INET AF_INET
#define PF_INET6 AF_INET6

#define PF_KTHREAD 0x00200000
#define TASK_RUNNING 0x0000
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define __TASK_STOPPED 0x0004
#define __TASK_TRACED 0x0008
#define EXIT_DEAD 0x0010
#define EXIT_ZOMBIE 0x0020
#define TASK_DEAD 0x0080

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFLNK 0120000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define S_ISLNK(m) (((m) & S_IFMT) == S_IFLNK)
#define S_ISREG(m) (((m) & S_IFMT) == S_IFREG)
#define S_ISDIR(m) (((m) & S_IFMT) == S_IFDIR)
#define S_ISCHR(m) (((m) & S_IFMT) == S_IFCHR)
#define S_ISBLK(m) (((m) & S_IFMT) == S_IFBLK)
#define S_ISFIFO(m) (((m) & S_IFMT) == S_IFIFO)
#define S_ISSOCK(m) (((m) & S_IFMT) == S_IFSOCK)

#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define EIO 5
#define E2BIG 7
#define EBADF 9
#define EAGAIN 11
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define EINVAL 22
#define ENOSPC 28

#define U8_MAX ((u8)~0U)
#define U16_MAX ((u16)~0U)
#define U32_MAX ((u32)~0U)
#define U64_MAX ((u64)~0ULL)
#define S32_MAX ((s32)(U32_MAX >> 1))
#define S64_MAX ((s64)(U64_MAX >> 1))

#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_USEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL
#define MSEC_PER_SEC 1000ULL

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif
#define min_t(type, x, y) ({ type __x = (x); type __y = (y); __x < __y ? __x : __y; })
#define max_t(type, x, y) ({ type __x = (x); type __y = (y); __x > __y ? __x : __y; })

/* ---- byte order: kernel names and BCC's bpf_* names ---- */
#define ntohs(x) bpf_ntohs(x)
#define htons(x) bpf_htons(x)
#define ntohl(x) bpf_ntohl(x)
#define htonl(x) bpf_htonl(x)
#define bpf_ntohll(x) bpf_be64_to_cpu(x)
#define bpf_htonll(x) bpf_cpu_to_be64(x)

/* ---- BCC helpers.h ---- */
#define BCC_SEC(name) __attribute__((section(name), used))
#define CUR_CPU_IDENTIFIER BPF_F_CURRENT_CPU
#define MASK(_n) ((_n) < 64 ? (1ull << (_n)) - 1 : ((u64)-1LL))

/* BCC's packet loads for socket filters (LD_ABS/LD_IND: network byte order in,
 * host order out; the verifier allows them in socket filter programs). */
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

/* BCC's lock_xadd: an atomic add whose result is discarded. */
#define lock_xadd(ptr, val) ((void)__sync_fetch_and_add(ptr, val))

/* floor(log2(v)), 0 for v == 0 (BCC's bpf_log2). */
static __always_inline unsigned int bpf_log2(unsigned int v)
{
	unsigned int r, shift;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* Histogram slot: floor(log2(v)) + 1 for v >= 1, 0 for v == 0 (BCC's bpf_log2l). */
static __always_inline unsigned int bpf_log2l(unsigned long v)
{
	unsigned int hi = v >> 32;

	if (hi)
		return bpf_log2(hi) + 32 + 1;
	return bpf_log2(v) + 1;
}

/* BCC's bpf_trace_printk takes only the format literal and its arguments. */
#define bpf_trace_printk(fmt, ...) ({                                        \
	static const char ____bccless_fmt[] = fmt;                           \
	bpf_trace_printk(____bccless_fmt, sizeof(____bccless_fmt), ##__VA_ARGS__); \
})

/* Registers: libbpf covers PARM1..5; BCC also has PARM6 and a syscall context. */
#ifndef PT_REGS_PARM6
#define PT_REGS_PARM6(x) (__PT_REGS_CAST(x)->r9)
#endif
/* x86-64 kernels >= 4.17 always use syscall wrappers: the real arguments live
 * in a pt_regs the wrapper receives as its first argument. */
#define PT_REGS_SYSCALL_CTX(ctx) ((struct pt_regs *)PT_REGS_PARM1(ctx))
#define __BCCLESS_SYSCALL_REGS di, si, dx, r10, r8, r9
#define __bccless_syscall_arg1(ctx) BPF_CORE_READ(PT_REGS_SYSCALL_CTX(ctx), di)
#define __bccless_syscall_arg2(ctx) BPF_CORE_READ(PT_REGS_SYSCALL_CTX(ctx), si)
#define __bccless_syscall_arg3(ctx) BPF_CORE_READ(PT_REGS_SYSCALL_CTX(ctx), dx)
#define __bccless_syscall_arg4(ctx) BPF_CORE_READ(PT_REGS_SYSCALL_CTX(ctx), r10)
#define __bccless_syscall_arg5(ctx) BPF_CORE_READ(PT_REGS_SYSCALL_CTX(ctx), r8)
#define __bccless_syscall_arg6(ctx) BPF_CORE_READ(PT_REGS_SYSCALL_CTX(ctx), r9)

/* Implicit probe reads inserted by the translator for dereferences of kernel
 * and other external memory.  vmlinux.h records carry preserve_access_index,
 * so &(expr) on kernel types is already CO-RE relocated (and the reads nest,
 * which __builtin_preserve_access_index does not). */
#define __bccless_read_kernel(expr) ({                                        \
	typeof(expr) ____bccless_val;                                        \
	bpf_probe_read_kernel(&____bccless_val, sizeof(____bccless_val), (const void *)&(expr)); \
	____bccless_val;                                                     \
})
#define __bccless_read(expr) ({                                               \
	typeof(expr) ____bccless_val;                                        \
	bpf_probe_read(&____bccless_val, sizeof(____bccless_val), (void *)&(expr)); \
	____bccless_val;                                                     \
})

/* Tracepoint __data_loc fields: low 16 bits offset from the record start,
 * high 16 bits length. */
#define TP_DATA_LOC_READ_CONST(dst, field, length) do {                       \
	unsigned short __offset = args->data_loc_##field & 0xFFFF;           \
	bpf_probe_read_kernel((void *)(dst), (length), (char *)args + __offset); \
} while (0)
#define TP_DATA_LOC_READ(dst, field) do {                                     \
	unsigned short __offset = args->data_loc_##field & 0xFFFF;           \
	unsigned short __length = args->data_loc_##field >> 16;              \
	bpf_probe_read_kernel((void *)(dst), __length, (char *)args + __offset); \
} while (0)
#define TP_DATA_LOC_READ_STR(dst, field, length) do {                         \
	unsigned short __offset = args->data_loc_##field & 0xFFFF;           \
	bpf_probe_read_kernel_str((void *)(dst), (length), (char *)args + __offset); \
} while (0)

/* Probe-declaring macros (program kind comes from the function name prefix). */
#define TRACEPOINT_PROBE(category, event) \
	int tracepoint__##category##__##event(struct tracepoint__##category##__##event *args)
#define RAW_TRACEPOINT_PROBE(event) \
	int raw_tracepoint__##event(struct bpf_raw_tracepoint_args *ctx)
#define KFUNC_PROBE(event, args...) BPF_PROG(kfunc__vmlinux__##event, ##args)
#define KRETFUNC_PROBE(event, args...) BPF_PROG(kretfunc__vmlinux__##event, ##args)
#define MODULE_KFUNC_PROBE(module, event, args...) BPF_PROG(kfunc__##module##__##event, ##args)
#define MODULE_KRETFUNC_PROBE(module, event, args...) BPF_PROG(kretfunc__##module##__##event, ##args)
#define KMOD_RET(event, args...) BPF_PROG(kmod_ret__##event, ##args)
#define LSM_PROBE(event, args...) BPF_PROG(lsm__##event, ##args)

/* Stack trace map values (BCC's struct bpf_stacktrace). */
struct bpf_stacktrace {
	u64 ip[BPF_MAX_STACK_DEPTH];
};

#define __bccless_roundup_pow2(n) ((n) <= 1 ? 1UL : 1UL << (64 - __builtin_clzl((unsigned long)(n) - 1)))
#define __bccless_str(x) #x
#define __bccless_xstr(x) __bccless_str(x)

#ifndef BPF_LICENSE
#define BPF_LICENSE GPL
#endif

#endif /* __BCCLESS_COMPAT_H */
