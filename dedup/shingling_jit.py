"""``shingling.shingle_loop`` compiled by numba (imported only when a job is big enough)."""

from __future__ import annotations

import numba

from dedup.shingling import shingle_loop

compiled_shingle_loop = numba.njit(cache=True, nogil=True)(shingle_loop)
