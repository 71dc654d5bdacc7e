"""The LFW alignment stage: read LFW, align faces, join attributes, split, write a dataset."""
