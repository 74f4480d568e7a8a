/* A uprobe/uretprobe target: waits for a line on stdin, then calls
 * bccless_target() N times (N from argv[1]) and prints the sum. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int bccless_target(int x)
{
    __asm__ volatile("" ::: "memory");
    return x * 2 + 1;
}

__attribute__((noinline)) int bccless_other(int x)
{
    __asm__ volatile("" ::: "memory");
    return x + 7;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    long sum = 0;
    char line[16];
    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    for (int i = 0; i < n; i++)
        sum += bccless_target(i);
    sum += bccless_other(n);
    printf("%ld\n", sum);
    return 0;
}
