"""The linker: an ObjectSpec plus a target kernel's BTF in, final per-program
instructions out (CO-RE, subprogram calls, map/data/extern references,
func/line info), without touching the kernel."""
