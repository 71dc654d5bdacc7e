"""Runtime helpers every stage uses: atomic writes and the output guard, resource limits, device, distributed, progress."""
