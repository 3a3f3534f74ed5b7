"""The perturbations a reader of expressions must not care about (fer_jax.infra.augment)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def test_diffaugment_policies_parse_and_bad_ones_are_named():
  assert augment.parse_policy('') == ()
  assert augment.parse_policy('color+translation+cutout') == ('color', 'translation', 'cutout')
  for bad in ('colour', 'color+color', 'translation,cutout'):
    with pytest.raises(ValueError, match='expected policies joined by'):
      augment.parse_policy(bad)


def test_diffaugment_without_a_policy_is_the_identity():
  x = _dot_and_block()
  assert augment.diffaugment(jax.random.key(0), x, ()) is x


def test_diffaugment_translation_moves_each_image_by_at_most_an_eighth_and_fills_with_zero():
  x = jnp.ones((64, 16, 16, 1))
  y = np.asarray(augment.diffaugment(jax.random.key(1), x, ('translation',)))
  assert set(np.unique(y)) <= {0.0, 1.0}
  kept_rows = (y == 1).any(axis=(2, 3)).sum(1)
  kept_cols = (y == 1).any(axis=(1, 3)).sum(1)
  assert kept_rows.min() >= 14 and kept_cols.min() >= 14  # 16 / 8 = 2 pixels at most
  assert len(set(zip(kept_rows, kept_cols))) > 3  # each image its own shift


def test_diffaugment_cutout_zeroes_at_most_a_half_size_square_per_image():
  x = jnp.ones((64, 16, 16, 1))
  y = np.asarray(augment.diffaugment(jax.random.key(2), x, ('cutout',)))
  zeros = (y == 0).sum((1, 2, 3))
  assert zeros.max() == 64 and zeros.min() > 0  # 8x8 when inside the image, clipped at its edges
  assert len(set(zeros)) > 1


def test_diffaugment_color_shifts_brightness_and_scales_contrast_per_image():
  x = _dot_and_block()
  x = jnp.concatenate([x] * 32)
  y = np.asarray(augment.diffaugment(jax.random.key(3), x, ('color',)))
  shift = y.mean((1, 2, 3)) - np.asarray(x).mean((1, 2, 3))
  assert np.abs(shift).max() <= 0.5 + 1e-6 and shift.std() > 0.1
  ratio = y.std((1, 2, 3)) / np.asarray(x).std((1, 2, 3))
  assert 0.5 - 1e-6 <= ratio.min() and ratio.max() <= 1.5 + 1e-6 and ratio.std() > 0.1


def test_diffaugment_is_differentiable_in_the_images():
  x = _dot_and_block()
  g = jax.grad(lambda y: augment.diffaugment(jax.random.key(4), y, ('color', 'translation', 'cutout')).sum())(x)
  assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0
