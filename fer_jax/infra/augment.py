"""Random image perturbations that a reader of expressions should not care about: small shifts, blur, noise.

Used where a network's reading of the expression must not hang on single pixels: the pool judge's training
(`fer_jax.eval.small_cnn`) and, with `expression_gan.cls_augment`, the expression GAN critic's class head
(on real faces when the critic learns, on generated ones when the generator is scored: DiffAugment's rule,
Zhao et al. 2020, that both sides see the same distribution). Differentiable in the images. Images are float
NHWC in [-1, 1].
"""

import jax
import jax.numpy as jnp


def _blur3(x):
  """3x3 binomial blur, edges repeated."""
  k = jnp.array([0.25, 0.5, 0.25], x.dtype)
  p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='edge')
  h = k[0] * p[:, :, :-2] + k[1] * p[:, :, 1:-1] + k[2] * p[:, :, 2:]
  return k[0] * h[:, :-2] + k[1] * h[:, 1:-1] + k[2] * h[:, 2:]


def shift_noise(key, x, *, max_shift=2, noise=0.03, blur=False):
  """Each image shifted by up to `max_shift` pixels (edges repeated), with Gaussian noise of std `noise`;
  with `blur`, first mixed with its 3x3-blurred self at a random strength in [0, 1] (per image) and the noise
  std drawn in [0, 2 * noise], so that neither an isolated pixel nor the noise's grain tells a class."""
  n, h, w, c = x.shape
  k_dy, k_dx, k_noise = jax.random.split(key, 3)
  if blur:
    strength = jax.random.uniform(jax.random.fold_in(key, 3), (n, 1, 1, 1), x.dtype)
    x = x + strength * (_blur3(x) - x)
    std = noise * 2.0 * jax.random.uniform(jax.random.fold_in(key, 4), (n, 1, 1, 1), x.dtype)
  else:
    std = noise
  p = max_shift
  xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode='edge')
  dy = jax.random.randint(k_dy, (n,), 0, 2 * p + 1)
  dx = jax.random.randint(k_dx, (n,), 0, 2 * p + 1)
  x = jax.vmap(lambda im, a, b: jax.lax.dynamic_slice(im, (a, b, 0), (h, w, c)))(xp, dy, dx)
  return x + std * jax.random.normal(k_noise, x.shape, x.dtype)
