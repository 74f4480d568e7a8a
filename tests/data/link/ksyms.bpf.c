// .ksyms externs: typed variables, typeless symbols, kfuncs (strong and weak).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern const int bpf_prog_active __ksym;
extern const struct rq runqueues __ksym;
extern const void bpf_prog_put __ksym;
extern const void no_such_symbol_xyz __ksym __weak;
extern const int no_such_var_xyz __ksym __weak;
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void bpf_no_such_kfunc(void) __ksym __weak;

u64 out[8];

SEC("tp_btf/sched_switch")
int ksyms(u64 *ctx)
{
	struct task_struct *t;
	int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	struct rq *rq = bpf_this_cpu_ptr(&runqueues);

	out[0] = *active;
	out[5] = rq->cpu;
	out[1] = (u64)&bpf_prog_put;
	out[2] = (u64)&no_such_symbol_xyz;
	out[3] = (u64)&no_such_var_xyz;
	t = bpf_task_from_pid(1);
	if (t) {
		out[4] = t->pid;
		bpf_task_release(t);
	}
	if (bpf_no_such_kfunc)
		bpf_no_such_kfunc();
	return 0;
}
