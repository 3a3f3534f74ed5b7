"""The two pixel spaces of the project and the one way between them: uint8 [0, 255] (datasets, synthetic sets,
grids) and float [-1, 1] (what every network sees and every generator emits).

NumPy in, NumPy out; a jax array or a tracer (inside `jax.jit`) goes through jax.numpy.
"""

import jax.numpy as jnp
import numpy as np


def _xp(x):
  return np if isinstance(x, np.ndarray) else jnp


def to_unit(images):
  """uint8 [0, 255] -> float32 [-1, 1]; float input is taken as already in [-1, 1]."""
  xp = _xp(images)
  if xp.issubdtype(images.dtype, xp.integer):
    return images.astype(xp.float32) / 127.5 - 1.0
  return images.astype(xp.float32)


def to_uint8(images):
  """float [-1, 1] -> uint8 [0, 255], rounded half to even and clipped."""
  xp = _xp(images)
  return xp.clip(xp.round((images + 1.0) * 127.5), 0, 255).astype(xp.uint8)
