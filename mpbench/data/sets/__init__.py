"""The built-in datasets, one module each: its layout text, reader, fake layout (a tiny copy with
real videos, for tests) and its ``register_dataset`` call. :mod:`mpbench.data.catalog` imports
them in :data:`BUILT_IN` order; a dataset of your own is one such file in a folder named by
``MPBENCH_DATASET_PATH`` (:mod:`mpbench.data.registry`)."""

BUILT_IN = ("folder", "lists", "ucf101", "hmdb51", "kinetics", "ssv2", "finegym", "mpii_cooking2")
