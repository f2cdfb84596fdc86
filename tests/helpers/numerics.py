"""Two trainings that must be the same run, compared up to float32 rounding.

With TensorFlow's op determinism on (agegender/model/build.py), a training repeats bit for bit:
five trainings of the narrow test network in one process, two processes sharing the two cores,
came out identical (docs/log.md, "A wrong gradient under AVX2"). The runs that once differed
(1e-7 to 3e-2 apart) were a oneDNN bug, now avoided in the network, not noise. The tolerance is
a margin for rounding a CPU's kernels may legitimately reorder; a real difference between two
trainings (another order of faces, augmentation, schedule, size or seed) moves their weights and
outputs by orders of magnitude more.
"""
import numpy as np

RTOL, ATOL = 1e-4, 1e-6


def same_run(a, b) -> bool:
    """``a`` and ``b`` (arrays of one shape) are what one training gives, up to float32 rounding."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))
