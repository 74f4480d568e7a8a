/* Target of the bcc drop-in's uprobe tests: calls each function with known
 * arguments, once per line read from stdin, so the test decides when. */
#include <stdio.h>
#include <string.h>

__attribute__((noinline)) long add_numbers(long a, long b)
{
	__asm__ volatile("" ::: "memory");
	return a + b;
}

__attribute__((noinline)) int square(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * x;
}

__attribute__((noinline)) int deep2(int x) { __asm__ volatile("" ::: "memory"); return square(x) + 1; }
__attribute__((noinline)) int deep1(int x) { __asm__ volatile("" ::: "memory"); return deep2(x) + 1; }

int main(void)
{
	char line[64];
	long n = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		n++;
		if (!strncmp(line, "add", 3))
			printf("%ld\n", add_numbers(40 + n, 2));
		else if (!strncmp(line, "deep", 4))
			printf("%d\n", deep1((int)n));
		else
			printf("%d\n", square((int)n + 6));
	}
	return 0;
}
