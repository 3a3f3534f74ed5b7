"""Sensor noise matched to real faces: a camera model for generated ones.

Real photographs carry sensor noise of every strength; the identity GAN draws faces whose noise is one narrow
strength, below the real faces' (on quick's pool the median noise level of the GANs' set is about half the real
faces': docs/findings.md, 25). `add_matched_noise` gives each generated face a noise level drawn from the levels
of a reference set of real faces (the GAN pool's training faces) by adding zero-mean Gaussian noise of the
missing variance; a face already at or above its drawn level is left as it is.

The noise level of an image is Immerkaer's estimate ("Fast noise variance estimation", CVIU 1996): the mean
absolute response to the 3x3 mask [[1,-2,1],[-2,4,-2],[1,-2,1]], which cancels image structure up to second
order, times sqrt(pi/2) / 6 (the response to white Gaussian noise of std s has std 6 s). On faces it also counts
some edges, the same way on real and generated ones: the levels compared are of the same kind.
"""

import numpy as np

_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_levels(images):
  """uint8 [N,H,W,1] -> float [N]: each image's noise level (std) in [0, 1] pixel units."""
  x = images[..., 0].astype(np.float32) / 255.0
  h, w = x.shape[1:]
  response = sum(_MASK[i, j] * x[:, i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3))
  return np.sqrt(np.pi / 2) / (6 * (h - 2) * (w - 2)) * np.abs(response).sum((1, 2))


def add_matched_noise(images, reference_levels, seed, ids, emotion):
  """uint8 [N,H,W,1] faces -> the same faces with sensor noise: face i (identity ids[i], `emotion`) is given a
  level drawn from `reference_levels` and the Gaussian noise that brings its own level up to it. Both draws depend
  on (seed, identity, emotion) only, so a face does not change with the size of the set it is in."""
  reference_levels = np.asarray(reference_levels, np.float64)
  own = noise_levels(images).astype(np.float64)
  out = np.empty_like(images)
  for i, (image, level) in enumerate(zip(images, own)):
    rng = np.random.default_rng([int(seed), int(ids[i]), int(emotion)])
    target = reference_levels[rng.integers(len(reference_levels))]
    std = np.sqrt(max(target**2 - level**2, 0.0))
    noisy = image.astype(np.float64) + 255.0 * std * rng.standard_normal(image.shape)
    out[i] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
  return out
