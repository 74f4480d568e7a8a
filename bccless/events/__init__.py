"""Event streams from BPF programs to Python: perf buffers, ring buffers, trace_pipe."""
