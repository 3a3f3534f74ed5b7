"""The perturbations a reader of expressions must not care about (fer_jax.infra.augment)."""

import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.infra import augment


def _dot_and_block():
  x = -jnp.ones((2, 16, 16, 1))
  x = x.at[0, 8, 8, 0].set(1.0)  # an isolated pixel
  return x.at[1, 6:11, 6:11, 0].set(1.0)  # a 5x5 patch (a brow, a mouth)


def test_without_shift_noise_or_blur_it_is_the_identity():
  x = _dot_and_block()
  np.testing.assert_array_equal(augment.shift_noise(jax.random.key(0), x, max_shift=0, noise=0.0), x)


def test_blur_fades_an_isolated_pixel_but_not_a_patch():
  x = _dot_and_block()
  peaks = np.array([augment.shift_noise(jax.random.key(i), x, noise=0.0, blur=True).max((1, 2, 3)) for i in range(64)])
  assert peaks[:, 0].mean() < 0.5 and peaks[:, 0].min() < -0.3  # the dot loses most of its contrast
  assert peaks[:, 1].min() > 0.99  # the patch's centre keeps it
  assert not np.allclose(peaks[:, 0], peaks[0, 0])  # random strength, per key


def test_differentiable_in_the_images():
  x = _dot_and_block()
  g = jax.grad(lambda y: augment.shift_noise(jax.random.key(3), y, blur=True).sum())(x)
  np.testing.assert_allclose(g.sum(), x.size, rtol=1e-4)  # every output pixel a weighted average of inputs
