"""The SimPy cycle-level model of a sparse accelerator."""
