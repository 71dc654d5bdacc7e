"""Dataset rows (memory-mapped images.npy + index.csv), batch order, augmentation."""
