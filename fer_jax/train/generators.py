"""Trained generators, loaded from their trainers' checkpoints and sampled: the one module the synthetic stage
imports, and what the trainers' sample grids and metrics use.

    id_gen = load_identity(IDENTITY_GAN_DIR, config)             # EMA generator, its average w, truncation
    faces = sample_identities(id_gen, key, n, psi)               # uint8 [n, H, W, 1], face i from (key, i)
    g_params = load_expression(EXPRESSION_GAN_DIR, config)       # EMA generator params
    told = conditions(config, pool, labels, ids, seed)            # what G is told: labels, or AUs (condition aus)
    out, masks = translate_all(config, g_params, faces, told)    # uint8 in, uint8 out (masks: attention only)

Loading reads only the generator's part of a checkpoint (no trainer code: the state is restored as saved and
its shapes checked against the generator `config` describes), so a checkpoint made with other settings is one
clear error.
"""

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.infra import checkpointing, parallel, pixels
from fer_jax.infra.errors import UserError
from fer_jax.models import stargan, stylegan

# ------------------------------------------------------------------------------------------ identity GAN


@dataclasses.dataclass
class IdentityGenerator:
  """A trained identity generator ready to sample: the module, its EMA params and the average w."""

  module: stylegan.Generator
  params: dict
  w_avg: jax.Array
  psi: float = 1.0  # default truncation
  step: int = 0

  @property
  def image_size(self):
    return self.module.image_size


@functools.lru_cache(maxsize=None)
def _sampler(module, batch_size):
  def sample(params, w_avg, key, start, psi, labels):
    # Sample i is a function of (key, i) only, so a larger n extends a smaller one (nested sets); a conditional
    # generator's sample i of each label shares its z and noise.
    idx = start + jnp.arange(batch_size)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)
    z = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0), (module.z_dim,)))(keys)
    noise_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    w = module.apply({'params': params}, z, labels if module.num_classes else None, method=module.mapping)
    ws = stylegan.truncate(jnp.broadcast_to(w[:, None], (batch_size, module.num_ws, w.shape[-1])), w_avg, psi)
    img = module.apply({'params': params}, ws, noise_keys, method=module.synthesis)
    return pixels.to_uint8(img)

  return parallel.jit(sample)


def sample_identities(generator, key, n, psi=None, batch_size=256, start=0, labels=None):
  """n random faces, uint8 [n, H, W, 1]: identities start .. start + n - 1, identity i depending on `key` and
  i only. psi is the truncation (1 = none; default: the generator's). A conditional generator needs `labels`:
  one int (every face) or [n] (face i's), indices into emotions.EMOTIONS."""
  psi = generator.psi if psi is None else psi
  n = int(n)
  bs = int(batch_size)  # fixed, so that every n uses one compiled program
  fn = _sampler(generator.module, bs)
  classes = generator.module.num_classes
  if classes and labels is None:
    raise ValueError('a conditional identity generator needs labels')
  if not classes and labels is not None:
    raise ValueError('an unconditional identity generator takes no labels')
  labels = np.asarray(0 if labels is None else labels)
  if labels.ndim > 1 or labels.ndim == 1 and len(labels) != n or not np.isin(labels, np.arange(max(classes, 1))).all():
    raise ValueError(f'labels: expected one class or {n} of them, each in 0 .. {max(classes, 1) - 1}; got {labels}')
  labels = np.broadcast_to(labels.astype(np.int32), (n,))
  labels = np.concatenate([labels, np.zeros(-n % bs, np.int32)])  # the last batch padded to bs
  out = [
    np.asarray(
      fn(generator.params, generator.w_avg, key, jnp.int32(s), jnp.float32(psi), labels[s - start : s - start + bs])
    )
    for s in range(int(start), int(start) + n, bs)
  ]
  return np.concatenate(out)[:n] if out else np.zeros((0, generator.image_size, generator.image_size, 1), np.uint8)


def identity_generator(config, g_params, w_avg, step=0):
  """An `IdentityGenerator` of `config` around params (a trainer's state, or a checkpoint's)."""
  gen, _ = stylegan.from_config(config)
  return IdentityGenerator(gen, g_params, w_avg, float(config.identity_gan.psi), int(step))


def load_identity(workdir, config):
  """The EMA generator of the newest checkpoint in WORKDIR/checkpoints (what the synthetic sets use)."""
  gen, _ = stylegan.from_config(config)
  z = jnp.zeros((1, int(config.identity_gan.z_dim)))
  labels = jnp.zeros((1,), jnp.int32) if gen.num_classes else None
  shapes = jax.eval_shape(lambda k: gen.init(k, z, jax.random.split(k, 1), labels)['params'], jax.random.PRNGKey(0))
  state = _restore(workdir, 'identity GAN', 'experiments.train_identity_gan', 'identity_gan')
  g_ema = _checked(state['g_ema'], shapes, workdir, 'identity_gan')
  return identity_generator(
    config, g_ema, parallel.replicate(np.asarray(state['w_avg'])), int(np.asarray(state['step']))
  )


# ---------------------------------------------------------------------------------------- expression GAN


@functools.lru_cache(maxsize=None)
def _translate_program(module):
  c_dim = module.c_dim

  def one_hot(labels):
    labels = jnp.asarray(labels)
    return labels.astype(jnp.float32) if labels.ndim == 2 else jax.nn.one_hot(labels, c_dim)

  @parallel.jit
  def translate(g_params, images, target_labels):
    out = module.apply(g_params, pixels.to_unit(images), one_hot(target_labels))
    if jnp.issubdtype(images.dtype, jnp.integer):
      return pixels.to_uint8(out)
    return out

  @parallel.jit
  def translate_with_mask(g_params, images, target_labels):
    return module.apply(g_params, pixels.to_unit(images), one_hot(target_labels), return_mask=True)

  return translate, translate_with_mask


def make_translate_fn(config):
  """-> translate(g_params, images, target_labels) -> images, jitted and deterministic.

  images: uint8 [N,H,W,1] (returns uint8) or float [N,H,W,1] in [-1, 1] (returns float in [-1, 1]);
  target_labels: int [N] (indices into fer_jax.data.emotions.EMOTIONS) or one-hot [N, 7]; with
  expression_gan.condition='aus', action-unit intensities [N, NUM_AUS] (`conditions`).
  """
  return _translate_program(stargan.from_config(config)[0])[0]


def translate_all(config, g_params, images, targets, batch_size=None):
  """Translates numpy arrays in fixed-size batches (one compile); -> (uint8 images, masks or None)."""
  _, fn = _translate_program(stargan.from_config(config)[0])
  bs = int(batch_size or config.expression_gan.eval_batch_size)
  out, mask = parallel.map_batches(lambda x, t: fn(g_params, x, t), (images, targets), bs)
  return pixels.to_uint8(out), mask


def conditions(config, pool, targets, ids, seed):
  """What the expression generator is told for emotion `targets` [N]: the targets themselves (condition
  'emotion') or, with condition 'aus', the action units of a training face of the GAN pool (`pool`) with that
  emotion, drawn from (seed, target, id): the same id always gets the same face, whatever else is drawn
  (GANimation's targets are real AU combinations; the pool's faces of an emotion hold its intensities)."""
  targets = np.asarray(targets)
  if config.expression_gan.condition != 'aus':
    return targets
  if pool.aus is None:
    raise UserError(
      f"expression_gan.condition='aus' needs action units in the GAN pool's records; "
      f'data.pool_sources={config.data.pool_sources!r} has none'
    )
  out = np.empty((len(targets), pool.aus.shape[1]), np.float32)
  train_labels = pool.labels[pool.train_idx]
  by_emotion = {}
  for i, (t, j) in enumerate(zip(targets.tolist(), np.asarray(ids).tolist())):
    if t not in by_emotion:
      by_emotion[t] = pool.train_idx[train_labels == t]
      if not len(by_emotion[t]):
        raise UserError(f'the GAN pool has no training face of emotion {t} to take action units from')
    candidates = by_emotion[t]
    out[i] = pool.aus[candidates[np.random.default_rng([int(seed), t, int(j)]).integers(len(candidates))]]
  return out


def load_expression(workdir, config):
  """The EMA generator params of the newest checkpoint in WORKDIR/checkpoints."""
  gen, _ = stargan.from_config(config)
  e = config.expression_gan
  size, c_dim = int(config.data.image_size), stargan.condition_dim(e.condition, e.num_classes)
  shapes = jax.eval_shape(
    lambda k: gen.init(k, jnp.zeros((1, size, size, 1)), jnp.zeros((1, c_dim))), jax.random.PRNGKey(0)
  )
  state = _restore(workdir, 'expression GAN', 'experiments.train_expression_gan', 'expression_gan')
  return _checked(state['g_ema'], shapes, workdir, 'expression_gan')


# ------------------------------------------------------------------------------------------------ shared


def _restore(workdir, what, command, section):
  directory = os.path.join(workdir, 'checkpoints')
  with checkpointing.Checkpointer(directory) as ckpt:
    if ckpt.latest_step() is None:
      raise UserError(f'no {what} checkpoint in {directory}; train it first (python -m {command})')
    state, _ = ckpt.restore(None)
  if 'g_ema' not in state:
    raise UserError(f'{directory} holds no {what} checkpoint ({section}: found {", ".join(sorted(state))})')
  return state


def _checked(params, shapes, workdir, section):
  """`params` replicated on the mesh, after checking they are the generator of `shapes`."""
  got = jax.tree.map(lambda x: tuple(x.shape), params)
  want = jax.tree.map(lambda s: tuple(s.shape), shapes)
  if got != want:
    raise UserError(
      f'the checkpoint in {workdir} does not match the config ({section} or data.image_size changed?'
      + (' a one-stage GAN is identity_gan.num_classes=7' if section == 'identity_gan' else '')
      + '): its generator has other layers or shapes'
    )
  return parallel.replicate(jax.tree.map(lambda x, s: np.asarray(x, s.dtype), params, shapes))
