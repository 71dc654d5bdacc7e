"""Runtime helpers every stage uses: the error classes, atomic writes and the output guard,
resource limits, device, distributed, progress."""
