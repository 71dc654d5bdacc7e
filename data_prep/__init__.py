"""The LFW alignment stage: read LFW, align faces, join attributes, split, write a dataset.

Each dataset source is one reader module that registers itself with ``@reader`` (data_prep.sources);
the imports below are the registrations `reproduce --dataset NAME` sees."""

from data_prep import celeba, folder, sources  # noqa: F401 - each registers its reader
