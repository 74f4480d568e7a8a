/* Every BTF kind clang emits, for bccless's BTF parser tests. */
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))

struct bits {
	int a : 3;
	unsigned int b : 13;
	char c;
	long long d : 40;
	int arr[4];
};

union either {
	int i;
	float f;
	double d;
};

enum small { SMALL_NEG = -3, SMALL_POS = 4 };
enum usmall { USMALL_BIG = 0xffffffffu };
enum big { BIG_A = 0x123456789ULL, BIG_B = 1 };
enum sbig { SBIG_NEG = -0x100000000LL, SBIG_POS = 2 };

struct tagged {
	int x __tag("field_tag");
	int __user *p;
} __tag("struct_tag");

struct fwd_only;
typedef int (*vfn_t)(int, ...);
typedef const volatile struct bits cv_bits_t;

struct holder {
	struct bits b;
	union either e;
	enum small s;
	enum usmall us;
	enum big g;
	enum sbig sg;
	struct tagged t;
	struct fwd_only *fwd;
	vfn_t fn;
	cv_bits_t *cvb;
	int *restrict rp;
	struct bits matrix[2][3];
};

struct holder global_holder;
int global_counter = 5;
static volatile int static_counter;
char _license[] __attribute__((section("license"))) = "GPL";

static __attribute__((noinline)) int helper_fn(int a) __tag("helper_tag")
{
	return a + static_counter;
}

__attribute__((section("tracepoint/syscalls/sys_enter_getpid")))
int prog(void *ctx)
{
	global_counter += helper_fn(global_holder.b.a);
	return 0;
}
