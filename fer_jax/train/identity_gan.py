"""Identity GAN trainer: a StyleGAN2-style generator of random faces (random identities) on the GAN pool.

`train_and_evaluate(config, workdir)` = `train` (the loop) + `evaluate` (the scores) + metrics.json. It trains
on the GAN pool's training subjects (all expressions; `fer_jax.data.pool`); the held-out subjects' faces are
the reference set of the quality metrics. With identity_gan.num_classes = 7 it trains the one-stage GAN instead:
G and D are told each face's expression label (the fakes get the real batch's labels) and G draws a new face of
the class it is given. One jitted step (`train_step`) updates D (non-saturating logistic
loss) and then G (non-saturating loss, with style mixing; both use one generator pass), updates the EMA of G's
weights and the running average of w used for truncation; on every `r1_every`-th step `r1_step` (the lazy R1
penalty, a second compiled program chosen on the host by step number, so no host sync) runs before it. All
programs are pure functions of (state, batch) bound to the `Hparams` and compiled once per hparams (`compiled`).
G and D have separate Adam states; the losses are `fer_jax.train.losses`.

Resumability: the state (params, EMA, optimiser states, w_avg, step) is checkpointed; all randomness of a
step comes from fold_in(key(seed), step) and the data order from (seed, epoch), so a killed-and-rerun job
ends in the same state as an uninterrupted one. Losses are checked for NaN/inf at logging and checkpoint
intervals; a non-finite loss stops training with an error naming the steps, before any checkpoint of the
bad state is written.

Outputs in WORKDIR: checkpoints/, tensorboard/, samples/identities.png (fixed z, every `sample_every`
steps and at the end), metrics.json (Fréchet distance / precision / recall of the EMA generator vs held-out
pool subjects in the feature space of the pool's identity net, `fer_jax.eval.instruments`, with baselines:
untrained generator, pixel Gaussian, real training-pool faces).

The synthetic stage loads and samples the trained generator through `fer_jax.train.generators`.
"""

import dataclasses
import functools
import math
import os
import time
from typing import Any, NamedTuple

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from fer_jax.data import emotions, sources
from fer_jax.data import pool as pool_lib
from fer_jax.eval import gan_metrics, instruments
from fer_jax.infra import augment, checkpointing, grids, io_utils, parallel, pixels, profiling, workdirs, writers
from fer_jax.infra.errors import UserError
from fer_jax.models import layers, stylegan
from fer_jax.train import generators, lib, losses

# The config keys this stage's results depend on: its workdir records them (`workdirs`).
CONFIG_KEYS = ('seed', 'data.pool_sources', 'data.pool_holdout_fraction', *workdirs.DATA_KEYS, 'identity_gan', 'eval')

W_AVG_BETA = 0.995  # StyleGAN2's tracking rate of the average w
GRID = 8  # the sample grid is GRID x GRID faces


def check_config(config):
  g = config.identity_gan
  size = int(config.data.image_size)
  if size < 8 or size & (size - 1):
    raise UserError(f'data.image_size={size}: the identity GAN needs a power of two >= 8')
  for name in (
    'batch_size',
    'steps',
    'r1_every',
    'sample_every',
    'checkpoint_every',
    'log_every',
    'eval_samples',
    'channels',
    'max_channels',
    'z_dim',
    'w_dim',
    'mapping_layers',
  ):
    if int(g[name]) <= 0:
      raise UserError(f'identity_gan.{name}={g[name]}: expected a positive integer')
  try:
    parallel.check_batch_size(int(g.batch_size), 'identity_gan.batch_size')
  except ValueError as e:
    raise UserError(str(e)) from None
  if not (isinstance(g.lr, (int, float)) and math.isfinite(g.lr) and g.lr > 0):
    raise UserError(f'identity_gan.lr={g.lr!r}; expected a number > 0')
  sources.check_pool_disjoint(config)
  if not 0 <= g.style_mixing_prob <= 1:
    raise UserError(f'identity_gan.style_mixing_prob={g.style_mixing_prob}: expected a probability')
  try:
    augment.parse_policy(g.diffaugment)
  except ValueError as e:
    raise UserError(f'identity_gan.diffaugment={e}') from None
  if g.num_classes not in (0, len(emotions.EMOTIONS)):
    raise UserError(
      f'identity_gan.num_classes={g.num_classes!r}; expected 0 (unconditional) or {len(emotions.EMOTIONS)} '
      "(conditioned on the GAN pool's expression labels)"
    )


# ------------------------------------------------------------------------------------- hyper-parameters


@dataclasses.dataclass(frozen=True, kw_only=True)
class Hparams:
  """What the compiled programs depend on: `compiled(hp)` is shared by all runs with equal hparams."""

  image_size: int
  seed: int  # the base key of every step's randomness
  devices: int  # the mesh the programs are compiled for
  z_dim: int
  w_dim: int
  mapping_layers: int
  mapping_lr_mul: float
  channels: int
  max_channels: int
  batch_size: int
  lr: float
  betas: tuple[float, float]
  r1_every: int
  r1_gamma: float
  ema_half_life_images: float
  style_mixing_prob: float
  diffaugment: tuple[str, ...]  # DiffAugment policies applied to everything D sees (`augment.diffaugment`)
  dtype: str  # compute dtype of G and D ('float32' | 'bfloat16'); parameters, outputs, losses and R1 float32
  num_classes: int  # 0: unconditional; else G and D are conditioned on the pool's expression labels


DTYPES = ('float32', 'bfloat16')


def hparams(config) -> Hparams:
  g = config.identity_gan
  if g.dtype not in DTYPES:
    raise UserError(f'identity_gan.dtype={g.dtype!r}; expected one of {", ".join(DTYPES)}')
  b1, b2 = g.betas
  return Hparams(
    image_size=int(config.data.image_size),
    seed=int(config.seed),
    devices=jax.device_count(),
    z_dim=int(g.z_dim),
    w_dim=int(g.w_dim),
    mapping_layers=int(g.mapping_layers),
    mapping_lr_mul=float(g.mapping_lr_mul),
    channels=int(g.channels),
    max_channels=int(g.max_channels),
    batch_size=int(g.batch_size),
    lr=float(g.lr),
    betas=(float(b1), float(b2)),
    r1_every=int(g.r1_every),
    r1_gamma=float(g.r1_gamma),
    ema_half_life_images=float(g.ema_half_life_images),
    style_mixing_prob=float(g.style_mixing_prob),
    diffaugment=augment.parse_policy(g.diffaugment),
    dtype=str(g.dtype),
    num_classes=int(g.num_classes),
  )


def models(hp, dtype=None):
  """(Generator, Discriminator) of `hp`, computing in `dtype` (default: hp.dtype)."""
  return stylegan.make(
    hp.image_size,
    hp.z_dim,
    hp.w_dim,
    hp.mapping_layers,
    hp.mapping_lr_mul,
    hp.channels,
    hp.max_channels,
    dtype or hp.dtype,
    hp.num_classes,
  )


def optimizers(hp):
  """Separate Adam for G and D; D's lr and betas get StyleGAN2's lazy-regularisation correction."""
  b1, b2 = hp.betas
  c = hp.r1_every / (hp.r1_every + 1)  # D takes r1_every + 1 optimiser steps per r1_every steps
  return (optax.adam(hp.lr, b1=b1, b2=b2, eps=1e-8), optax.adam(hp.lr * c, b1=b1**c, b2=b2**c, eps=1e-8))


# ---------------------------------------------------------------------------------------------- state


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  g_params: Any  # generator
  d_params: Any  # discriminator
  g_ema: Any  # EMA of g_params: what is sampled
  g_opt: Any
  d_opt: Any
  w_avg: jax.Array  # running average of w, the centre of truncation


def init(key, *, hp):
  """The full train state: step, G, D, G EMA, two Adam states, w_avg."""
  gen, disc = models(hp)
  g_tx, d_tx = optimizers(hp)
  kg, kd, kn = jax.random.split(key, 3)
  labels = jnp.zeros((1,), jnp.int32) if hp.num_classes else None
  g_params = gen.init(kg, jnp.zeros((1, hp.z_dim)), jax.random.split(kn, 1), labels)['params']
  d_params = disc.init(kd, jnp.zeros((1, hp.image_size, hp.image_size, 1)), labels)['params']
  # g_ema is a copy: donating the state must not see one buffer twice.
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    g_params=g_params,
    d_params=d_params,
    g_ema=jax.tree.map(lambda x: x + 0, g_params),
    g_opt=g_tx.init(g_params),
    d_opt=d_tx.init(d_params),
    w_avg=jnp.zeros((hp.w_dim,), jnp.float32),
  )


def init_state(config, key):
  """`init` of `config`'s hparams, compiled."""
  return compiled(hparams(config)).init(key)


# ---------------------------------------------------------------------------------------------- steps


def _make_ws(gen, params, z, z2, mix_key, mixing_prob, labels=None):
  """Mapping + per-sample style mixing: after a random cutoff layer, styles come from a second z (of the same
  label, when conditional)."""
  w = gen.apply({'params': params}, z, labels, method=gen.mapping)
  ws = jnp.broadcast_to(w[:, None], (w.shape[0], gen.num_ws, w.shape[-1]))
  if mixing_prob > 0:
    w2 = gen.apply({'params': params}, z2, labels, method=gen.mapping)
    k1, k2 = jax.random.split(mix_key)
    cutoff = jax.random.randint(k1, (w.shape[0],), 1, gen.num_ws)
    cutoff = jnp.where(jax.random.uniform(k2, (w.shape[0],)) < mixing_prob, cutoff, gen.num_ws)
    ws = jnp.where((jnp.arange(gen.num_ws)[None, :] < cutoff[:, None])[..., None], ws, w2[:, None])
  return ws, w


def _fake_images(gen, params, key, hp, labels=None):
  kz, kz2, km, kn = jax.random.split(key, 4)
  z = jax.random.normal(kz, (hp.batch_size, hp.z_dim))
  z2 = jax.random.normal(kz2, (hp.batch_size, hp.z_dim))
  ws, w = _make_ws(gen, params, z, z2, km, hp.style_mixing_prob, labels)
  return gen.apply({'params': params}, ws, jax.random.split(kn, hp.batch_size), method=gen.synthesis), w


def _step_key(hp, step):
  """All randomness of step `step` (main and R1 programs) derives from this key: a resumed run replays it."""
  return jax.random.fold_in(jax.random.PRNGKey(hp.seed), step)


def train_step(state, batch, nan_step, *, hp):
  """One D step (logistic loss) then one G step (non-saturating loss, style mixing) on the same batch of fakes,
  EMA and w_avg updates. `nan_step` (int32 scalar) poisons that step's losses with NaN (tests)."""
  gen, disc = models(hp)
  g_tx, d_tx = optimizers(hp)
  ema_beta = 0.5 ** (hp.batch_size / max(hp.ema_half_life_images, 1e-8))
  key = _step_key(hp, state.step)
  poison = jnp.where(state.step == nan_step, jnp.nan, 1.0)
  real = pixels.to_unit(batch['image'])
  # Conditional: the fakes are drawn for the real batch's labels, so D sees both with the pool's class mix.
  labels = batch['label'] if hp.num_classes else None
  # One G pass serves both updates: D learns from these fakes, then G's gradient flows back through the
  # same pass (its VJP) as the updated D scores them. A separate forward for D's fakes would add about a
  # third of G's forward+backward.
  fake, g_vjp, w = jax.vjp(lambda p: _fake_images(gen, p, key, hp, labels), state.g_params, has_aux=True)
  # DiffAugment: D sees every image, real or fake, through its own random transformation; G's gradient flows
  # back through the transformation of its images.
  aug_key = jax.random.fold_in(key, 1 << 20)
  aug = lambda i, x: augment.diffaugment(jax.random.fold_in(aug_key, i), x, hp.diffaugment)

  def d_loss_fn(d_params):
    logits_fake = disc.apply({'params': d_params}, aug(0, fake), labels)
    logits_real = disc.apply({'params': d_params}, aug(1, real), labels)
    loss = losses.logistic_d(logits_real, logits_fake) * poison
    return loss, dict(d_loss=loss, d_real=jnp.mean(logits_real), d_fake=jnp.mean(logits_fake))

  (_, d_metrics), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
  d_updates, d_opt = d_tx.update(d_grads, state.d_opt, state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  def g_loss_fn(img):
    return losses.logistic_g(disc.apply({'params': d_params}, aug(2, img), labels)) * poison

  g_loss, d_fake_img = jax.value_and_grad(g_loss_fn)(fake)
  (g_grads,) = g_vjp(d_fake_img)
  g_updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)
  g_ema = lib.ema(state.g_ema, g_params, ema_beta)
  w_mean = jnp.mean(w, axis=0)
  w_avg = w_mean + (state.w_avg - w_mean) * W_AVG_BETA
  new = TrainState(
    step=state.step + 1, g_params=g_params, d_params=d_params, g_ema=g_ema, g_opt=g_opt, d_opt=d_opt, w_avg=w_avg
  )
  return new, dict(
    g_loss=g_loss, g_grad_norm=optax.global_norm(g_grads), d_grad_norm=optax.global_norm(d_grads), **d_metrics
  )


def r1_step(state, batch, nan_step, *, hp):
  """The lazy R1 penalty as its own D step (StyleGAN2's "Dreg"), run before `train_step` on every r1_every-th
  step: weight gamma/2 * r1_every, as it runs r1_every times as rarely.

  D runs in float32 here whatever hp.dtype: R1 differentiates D twice (its input gradient, then that norm's
  parameter gradient), so bfloat16's rounding enters twice. Against float32 at init on CPU, bfloat16 put the
  R1 parameter gradient 2.6% (quick) to 6.5% (paper shapes) off in L2, more than the logistic loss's own
  gradient (3-4%), and R1's value 0.5-1.8% off. Lazy R1 runs on 1 step in r1_every (16), so float32 costs a
  few percent of the run's time."""
  _, disc = models(hp, 'float32')
  _, d_tx = optimizers(hp)
  r1_weight = 0.5 * hp.r1_gamma * hp.r1_every
  poison = jnp.where(state.step == nan_step, jnp.nan, 1.0)
  real = pixels.to_unit(batch['image'])
  labels = batch['label'] if hp.num_classes else None

  # With DiffAugment, the penalty is on the gradient at the real faces of what D scores: D of their transformation.
  aug_key = jax.random.fold_in(_step_key(hp, state.step), (1 << 20) + 1)

  def r1_fn(d_params):
    critic = lambda x: disc.apply({'params': d_params}, augment.diffaugment(aug_key, x, hp.diffaugment), labels)
    r1 = losses.r1(critic, real) * poison
    return r1_weight * r1, r1

  (_, r1), grads = jax.value_and_grad(r1_fn, has_aux=True)(state.d_params)
  updates, d_opt = d_tx.update(grads, state.d_opt, state.d_params)
  return state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt=d_opt), dict(
    r1=r1, r1_grad_norm=optax.global_norm(grads)
  )


class Steps(NamedTuple):
  init: Any  # key -> TrainState
  train: Any  # (state, batch{'image' uint8}, nan_step) -> (state, metrics); donates the state
  r1: Any  # the same signature


@functools.lru_cache(maxsize=None)
def compiled(hp: Hparams) -> Steps:
  """The jitted programs of `hp` (over the mesh), compiled once per hparams."""
  jit = functools.partial(parallel.data_parallel, batch_argnums=(1,), donate_argnums=(0,), num_args=3)
  return Steps(
    init=parallel.jit(functools.partial(init, hp=hp)),
    train=jit(functools.partial(train_step, hp=hp)),
    r1=jit(functools.partial(r1_step, hp=hp)),
  )


# ---------------------------------------------------------------------------------------------- restore


def generator_from_state(config, state, ema=True):
  return generators.identity_generator(
    config, state.g_ema if ema else state.g_params, state.w_avg, int(np.asarray(state.step))
  )


def restore_state(workdir, config, step=None):
  """(state, meta) of a checkpoint in WORKDIR/checkpoints (default: the latest), replicated on the mesh."""
  directory = os.path.join(workdir, 'checkpoints')
  ckpt = checkpointing.Checkpointer(directory)
  try:
    if ckpt.latest_step() is None:
      raise UserError(
        f'no identity GAN checkpoint in {directory}; train it first (python -m experiments.train_identity_gan)'
      )
    shapes = compiled(hparams(config)).init.eval_shape(jax.random.PRNGKey(0))
    template = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=parallel.replicated()), shapes)
    try:
      return ckpt.restore(template, step)
    except (ValueError, KeyError) as e:
      raise UserError(
        f'identity GAN checkpoint in {directory} does not match the config '
        f'(identity_gan / data.image_size changed?): {e}'
      ) from None
  finally:
    ckpt.close()


# ---------------------------------------------------------------------------------------------- train


def _keys(config):
  """(init key, sample-grid key, evaluation key): fixed by the seed."""
  key = jax.random.PRNGKey(config.seed)
  return key, jax.random.fold_in(key, 1 << 30), jax.random.fold_in(key, (1 << 30) + 1)


def _write_grid(generator, key, workdir):
  """samples/identities.png: GRID x GRID faces of fixed latents (conditional: GRID latents, one row each, a column
  per class); returns them."""
  path = os.path.join(workdir, 'samples', 'identities.png')
  classes = generator.module.num_classes
  if not classes:
    faces = generators.sample_identities(generator, key, GRID * GRID, batch_size=GRID * GRID)
    grids.save_grid([list(faces[r * GRID : (r + 1) * GRID]) for r in range(GRID)], path, cell=0.8)
    return faces
  per_class = [generators.sample_identities(generator, key, GRID, batch_size=GRID, labels=c) for c in range(classes)]
  rows = [[per_class[c][r] for c in range(classes)] for r in range(GRID)]
  grids.save_grid(
    rows, path, col_titles=list(emotions.EMOTIONS), title='rows: latents; columns: the class G was given', cell=0.8
  )
  return np.stack([face for row in rows for face in row])


def train(config, workdir, pool, evaluator, ckpt, writer, profile):
  """The loop on `pool`'s training faces, resuming from `ckpt`'s latest checkpoint: R1 + main steps, logging
  (tensorboard), checkpoints, the sample grid and the evaluation (`evaluator`) every sample_every steps and at
  the end; `profile` (`profiling.Profile`) receives its seconds. Returns (state, meta {step, history, baselines,
  feature_net}: what checkpoints hold)."""
  g = config.identity_gan
  key, sample_key, _ = _keys(config)
  total = int(g.steps)
  programs = compiled(hparams(config))
  with profile.part('compile'):
    state = parallel.replicate(programs.init(key))
  fp = evaluator.net_info['fingerprint']
  with profile.part('checkpoints'):
    restored, meta = lib.resume(ckpt, state, 'identity GAN')
  if restored is not None:
    state = restored
    if meta.get('feature_net') != fp:  # the metrics' feature net changed: old scores are not comparable
      logging.info('identity GAN: feature net changed; recomputing baselines, dropping old scores')
      with profile.part('evaluation'):
        meta.update(feature_net=fp, history=[], baselines=baselines(evaluator, config))
  else:
    with profile.part('evaluation'):
      meta = dict(step=0, history=[], feature_net=fp, baselines=baselines(evaluator, config))
  step = int(meta['step'])
  if int(np.asarray(state.step)) != step:
    raise UserError(
      f'checkpoint in {ckpt.directory} is inconsistent (state step {int(state.step)}, '
      f'meta step {step}); delete it to restart'
    )

  nan_step = parallel.replicate(jnp.int32(g.debug_nan_step))
  batches = pool_lib.batches(pool.train_dataset(), int(g.batch_size), config.seed, step, 'identity_gan.batch_size')
  pending, pending_r1, first, start = [], [], step, step
  t_train = time.time()
  bar = tqdm(total=total, initial=step, desc='identity GAN', unit='step', dynamic_ncols=True, disable=None)
  while step < total:
    with profile.part('input'):
      records = next(batches)
      batch = {'image': records['image']}
      if int(g.num_classes):
        batch['label'] = np.asarray(records['label'], np.int32)
      batch = parallel.shard_batch(batch)
    # The first steps of a run compile the two programs (when this process has not run their shapes yet).
    if step % int(g.r1_every) == 0:
      with profile.part('compile' if not pending_r1 and step == start else 'steps'):
        state, m = programs.r1(state, batch, nan_step)
      pending_r1.append(m)
    with profile.part('compile' if step == start else 'steps'):
      state, m = programs.train(state, batch, nan_step)
    pending.append(m)
    step += 1
    bar.update(1)
    at_ckpt = lib.every(step, g.checkpoint_every, total)
    at_sample = lib.every(step, g.sample_every, total)
    if lib.every(step, g.log_every) or at_ckpt or at_sample:
      with profile.part('steps'):  # the interval's one host sync: where its steps' compute is waited for
        means, per_step = lib.interval_means(pending)
        means_r1, per_step_r1 = lib.interval_means(pending_r1)  # R1 ran on fewer steps: its own means
      means.update(means_r1)
      per_step.update(per_step_r1)
      lib.check_finite(
        per_step,
        ckpt,
        lambda bad, first=first, last=step - 1: (
          f'identity GAN diverged: non-finite {", ".join(bad)} between steps {first} and {last}'
        ),
        hint='Try a lower identity_gan.lr or a larger identity_gan.r1_gamma.',
      )
      means['img_per_s'] = len(pending) * int(g.batch_size) / max(time.time() - t_train, 1e-9)
      writer.write_scalars(step, means)
      bar.set_postfix(g=f'{means["g_loss"]:.3f}', d=f'{means["d_loss"]:.3f}')
      pending, pending_r1, first, t_train = [], [], step, time.time()
    if at_sample:
      gen = generator_from_state(config, state)
      with profile.part('pictures'):
        grid = _write_grid(gen, sample_key, workdir)
        writer.write_images(step, {'identities': grid[:16]})
      with profile.part('evaluation'):
        scores = evaluate(evaluator, gen, config)
      meta['history'].append(dict(step=step, **scores))
      writer.write_scalars(step, {f'eval/{k}': v for k, v in scores.items() if isinstance(v, float)})
    if at_ckpt:
      meta['step'] = step
      with profile.part('checkpoints'):
        ckpt.save(step, state, meta)
    writer.flush()
    t_train = time.time() if at_sample else t_train
  bar.close()

  if not meta['history'] or meta['history'][-1]['step'] != total:  # resumed after the last eval
    gen = generator_from_state(config, state)
    with profile.part('pictures'):
      _write_grid(gen, sample_key, workdir)
    with profile.part('evaluation'):
      meta['history'].append(dict(step=total, **evaluate(evaluator, gen, config)))
  return state, meta


# ------------------------------------------------------------------------------------------- evaluate


def evaluate(evaluator, generator, config):
  """FD / precision / recall of `generator`'s faces (psi 1), and the FD of truncated ones (identity_gan.psi)."""
  g = config.identity_gan
  _, _, eval_key = _keys(config)
  n = int(g.eval_samples)
  # A conditional generator is scored on all its classes in turn, like the pool's balanced classes.
  labels = np.arange(n) % generator.module.num_classes if generator.module.num_classes else None
  sample = lambda psi: generators.sample_identities(
    generator, eval_key, n, psi=psi, batch_size=GRID * GRID, labels=labels
  )
  out = evaluator.score(sample(1.0))
  truncated = sample(float(g.psi))
  out['fd_truncated'] = evaluator.score(truncated)['fd']
  out['psi_truncated'] = float(g.psi)
  return out


def baselines(evaluator, config):
  """The scores of the untrained generator, a pixel Gaussian and real training-pool faces."""
  key, _, _ = _keys(config)
  untrained = evaluate(evaluator, generator_from_state(config, parallel.replicate(init_state(config, key))), config)
  return dict(untrained_generator=untrained, **evaluator.baselines(int(config.identity_gan.eval_samples), config.seed))


def summary(config, state, meta, evaluator, counts, profile):
  """metrics.json: the final scores, their distance to real faces, baselines, history and what was measured."""
  final = meta['history'][-1]
  base = meta['baselines']
  return dict(
    step=int(config.identity_gan.steps),
    **{k: final[k] for k in ('fd', 'precision', 'recall', 'fd_truncated', 'psi_truncated')},
    n_generated=final['n_generated'],
    n_reference=final['n_reference'],
    # Real faces of the GAN-training subjects score what real data scores, but they are no floor: they
    # come many per person from people the feature net was trained to tell apart, while generated
    # faces are independent new identities (the trained quick generator scores below them).
    fd_minus_real_faces={
      name: fd - base['real_train_pool']['fd']
      for name, fd in (
        ('trained', final['fd']),
        ('untrained_generator', base['untrained_generator']['fd']),
        ('pixel_gaussian', base['pixel_gaussian']['fd']),
      )
    },
    baselines=base,
    history=meta['history'],
    feature_net=dict(
      evaluator.net_info,
      why='penultimate layer of a CNN trained to classify pool subject ids across '
      'all expressions: it sees identity (face shape, tones, hair, geometry), not only '
      'expression',
    ),
    reference='held-out pool subjects (never seen by the GAN nor the identity net)',
    pool=counts,
    params=dict(generator=layers.count_params(state.g_params), discriminator=layers.count_params(state.d_params)),
    num_ws=models(hparams(config))[0].num_ws,
    profile_seconds=profile.summary(),  # this invocation's seconds (a resumed run's are of the resumed part)
    devices=jax.device_count(),
  )


# ---------------------------------------------------------------------------------- train_and_evaluate


@workdirs.stage(*CONFIG_KEYS)
def train_and_evaluate(config, workdir):
  """Trains the identity GAN in `workdir` (resuming if it holds a checkpoint); returns the final metrics."""
  check_config(config)
  os.makedirs(workdir, exist_ok=True)
  profile = profiling.Profile()
  with profile.part('data'):
    pool = pool_lib.load_pool(config, workdir)
  counts = pool.describe()
  logging.info(
    'identity GAN: %d training images of %d subjects; %d held-out images of %d subjects',
    *(counts[k] for k in ('train_images', 'train_subjects', 'holdout_images', 'holdout_subjects')),
  )
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'))
  writer = writers.create_writer(os.path.join(workdir, 'tensorboard'))
  try:
    with profile.part('instruments'):
      evaluator = gan_metrics.Evaluator(
        instruments.identity(config, workdir, pool), pool.train_images, pool.images[pool.holdout_idx]
      )
    total = int(config.identity_gan.steps)
    done = workdirs.finished(workdir, {'step': total, 'feature_net.fingerprint': evaluator.net_info['fingerprint']})
    if ckpt.latest_step() == total and done is not None:
      logging.info('identity GAN: already trained and evaluated in %s', workdir)
      return done
    state, meta = train(config, workdir, pool, evaluator, ckpt, writer, profile)
    result = summary(config, state, meta, evaluator, counts, profile)
    io_utils.write_json(os.path.join(workdir, workdirs.METRICS), result)
    logging.info(
      'identity GAN: FD %.2f (untrained %.2f, pixel Gaussian %.2f), precision %.3f, recall %.3f',
      result['fd'],
      result['baselines']['untrained_generator']['fd'],
      result['baselines']['pixel_gaussian']['fd'],
      result['precision'],
      result['recall'],
    )
    return result
  finally:
    writer.close()
    ckpt.close()
