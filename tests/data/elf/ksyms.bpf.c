// SPDX-License-Identifier: GPL-2.0
/* kfunc and typed/typeless ksym externs: exercises libbpf's .ksyms DATASEC
 * rewrite (dummy_ksym VAR, unnamed kfunc parameters) and a .rodata.str1.1
 * string-literal section. Also an object name with characters the kernel
 * refuses in map names ("ks-yms" prefix). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct task_struct;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym __weak;
extern void bpf_task_release(struct task_struct *) __ksym __weak;
extern void bpf_rcu_read_lock(void) __ksym;
extern const int bpf_prog_active __ksym;
extern const void init_task __ksym;

int out;

SEC("tp_btf/sched_switch")
int on_switch(__u64 *ctx)
{
	struct task_struct *t = bpf_task_acquire((struct task_struct *)ctx[1]);

	bpf_rcu_read_lock();
	if (t)
		bpf_task_release(t);
	out = *(int *)&bpf_prog_active + (int)(long)&init_task;
	bpf_printk("switch %d", out);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
