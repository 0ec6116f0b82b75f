"""Golden models: pruning methods, storage formats, GF(2) algebra and workloads.

Pure numpy/numba; imports nothing of ``hw``, ``sim`` or ``experiments`` (only the root
module :mod:`codesign.files`, which every subpackage uses to write files atomically).
Importing the package makes sure numba can cache the compiled kernels (:mod:`.numba_cache`).
"""

from codesign.models import numba_cache

numba_cache.configure()
