"""The training loop, its state and resume checks, in-training quality tracking."""
