"""Golden models: pruning methods, storage formats, GF(2) algebra and workloads.

Pure numpy/numba; imports nothing of ``hw``, ``sim`` or ``experiments`` (only the root
module :mod:`codesign.files`, which every subpackage uses to write files atomically).
"""
