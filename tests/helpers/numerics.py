"""Two trainings that must be the same run, compared up to float32 rounding.

With TensorFlow's op determinism on (agegender/model/build.py), a training repeats bit for bit on
an otherwise idle machine. When the two CPU cores are shared (CI runs two test workers, each with
TensorFlow threads of its own), two identical trainings in one process have come out different in
the seventh significant digit: about 1e-5 relative, never more. A real difference between two
trainings (another order of faces, augmentation, schedule, size or seed) moves their weights and
outputs by orders of magnitude more, so the tests compare at a tolerance between the two.
"""
import numpy as np

RTOL, ATOL = 1e-4, 1e-6


def same_run(a, b) -> bool:
    """``a`` and ``b`` (arrays of one shape) are what one training gives, up to float32 rounding."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))
