"""Random image perturbations that a reader of expressions should not care about: small shifts, blur, noise.

Used where a network's reading of the expression must not hang on single pixels: the pool judge's training
(`fer_jax.eval.small_cnn`) and, with `expression_gan.cls_augment`, the expression GAN critic's class head
(on real faces when the critic learns, on generated ones when the generator is scored: DiffAugment's rule,
Zhao et al. 2020, that both sides see the same distribution); and `diffaugment`, DiffAugment's own policies for a
critic that must not memorise a small training set (`identity_gan.diffaugment`). Differentiable in the images.
Images are float NHWC in [-1, 1].
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


# DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the same random
# transformations applied to every image a GAN's critic sees, real and generated, and differentiated through on
# the generator's side, so that the critic cannot memorise a small training set and the generator is not taught
# the transformations. Its three policies, for greyscale faces in [-1, 1] (the colour policy's saturation term
# has nothing to act on in one channel).
DIFFAUGMENT_POLICIES = ('color', 'translation', 'cutout')


def parse_policy(text):
  """'color+translation+cutout' -> ('color', 'translation', 'cutout'); '' -> (); ValueError naming a bad one."""
  names = tuple(p.strip() for p in str(text).split('+') if p.strip())
  bad = [p for p in names if p not in DIFFAUGMENT_POLICIES]
  if bad or len(set(names)) != len(names):
    raise ValueError(
      f'{text!r}: expected policies joined by "+" from {", ".join(DIFFAUGMENT_POLICIES)}, each at most once'
    )
  return names


def _translate(key, x, ratio=0.125):
  """Each image moved by up to ratio x its size in each direction, zero (mid-grey) filling what comes in."""
  n, h, w, c = x.shape
  sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  dy = jax.random.randint(ky, (n,), 0, 2 * sy + 1)
  dx = jax.random.randint(kx, (n,), 0, 2 * sx + 1)
  xp = jnp.pad(x, ((0, 0), (sy, sy), (sx, sx), (0, 0)))
  return jax.vmap(lambda im, a, b: jax.lax.dynamic_slice(im, (a, b, 0), (h, w, c)))(xp, dy, dx)


def _cutout(key, x, ratio=0.5):
  """A square of ratio x the image size, centred anywhere in the image, set to zero in each image."""
  n, h, w, _ = x.shape
  size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  cy = jax.random.randint(ky, (n, 1, 1, 1), 0, h + (1 - size_y % 2))
  cx = jax.random.randint(kx, (n, 1, 1, 1), 0, w + (1 - size_x % 2))
  rows = jnp.arange(h)[None, :, None, None] - cy + size_y // 2
  cols = jnp.arange(w)[None, None, :, None] - cx + size_x // 2
  inside = (rows >= 0) & (rows < size_y) & (cols >= 0) & (cols < size_x)
  return jnp.where(inside, jnp.zeros((), x.dtype), x)


def diffaugment(key, x, policy):
  """`policy` (a tuple from `parse_policy`) applied to x [N, H, W, C] in [-1, 1], each image its own draw.
  DiffAugment's ranges (its code, on StyleGAN2's [-1, 1] images): brightness +-0.5, contrast x[0.5, 1.5] about
  the image's mean, translation by up to 1/8 of the size, a cutout of half the size. Differentiable in x."""
  n = x.shape[0]
  for i, name in enumerate(policy):
    k = jax.random.fold_in(key, i)
    if name == 'color':
      kb, kc = jax.random.split(k)
      x = x + (jax.random.uniform(kb, (n, 1, 1, 1), x.dtype) - 0.5)
      mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
      x = (x - mean) * (jax.random.uniform(kc, (n, 1, 1, 1), x.dtype) + 0.5) + mean
    elif name == 'translation':
      x = _translate(k, x)
    elif name == 'cutout':
      x = _cutout(k, x)
  return x
