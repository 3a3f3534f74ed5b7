"""Identity GAN trainer: a StyleGAN2-style generator of random faces (random identities) on the GAN pool.

`train_and_evaluate(config, workdir)` trains on the GAN pool's training subjects (all expressions;
`fer_jax.data.pool`); the held-out subjects' faces are the reference set of the quality metrics. One jitted
step updates D (non-saturating logistic loss, plus the lazy R1 penalty on every `r1_every`-th step: a second
compiled variant chosen on the host by step number, so no host sync) and then G (non-saturating loss, with
style mixing; both use one generator pass), updates the EMA of G's weights and the running average of w used
for truncation. G and D have separate Adam states; the losses are `fer_jax.train.losses`.

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

import functools
import math
import os
import time
from typing import Any

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from fer_jax.data import pool as pool_lib
from fer_jax.data import sources
from fer_jax.eval import gan_metrics, instruments
from fer_jax.infra import checkpointing, grids, io_utils, parallel, pixels, workdirs, writers
from fer_jax.infra.errors import UserError
from fer_jax.models import layers, stylegan
from fer_jax.train import generators, lib, losses

# The config keys this stage's results depend on: its workdir records them (`workdirs`).
CONFIG_KEYS = ('seed', 'data.pool_sources', 'data.pool_holdout_fraction', *workdirs.DATA_KEYS, 'identity_gan', 'eval')

W_AVG_BETA = 0.995  # StyleGAN2's tracking rate of the average w
GRID = 8  # the sample grid is GRID x GRID faces


# -------------------------------------------------------------------------------------------- state


def _optimizers(config):
  """Separate Adam for G and D; D's lr and betas get StyleGAN2's lazy-regularisation correction."""
  g = config.identity_gan
  b1, b2 = g.betas
  c = int(g.r1_every) / (int(g.r1_every) + 1)  # D takes r1_every + 1 optimiser steps per r1_every steps
  return (optax.adam(g.lr, b1=b1, b2=b2, eps=1e-8), optax.adam(g.lr * c, b1=b1**c, b2=b2**c, eps=1e-8))


def _config_key(config):
  # What the compiled programs depend on: jitted functions are shared by all runs with the same key.
  g = config.identity_gan.to_dict()
  g.pop('debug_nan_step')
  return repr((sorted(g.items()), int(config.data.image_size), int(config.seed), jax.device_count()))


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  g: Any  # generator params
  d: Any  # discriminator params
  g_ema: Any  # EMA of g: what is sampled
  g_opt: Any
  d_opt: Any
  w_avg: jax.Array  # running average of w, the centre of truncation


def init_state(config, key):
  """The full train state: step, G, D, G EMA, two Adam states, w_avg."""
  return _cached(_init_fn, config)(key)


_PROGRAMS = {}


def _cached(maker, config):
  k = (maker.__name__, _config_key(config))
  if k not in _PROGRAMS:
    _PROGRAMS[k] = maker(config)
  return _PROGRAMS[k]


def _init_fn(config):
  gen, disc = stylegan.from_config(config)
  size, zd = int(config.data.image_size), int(config.identity_gan.z_dim)
  g_tx, d_tx = _optimizers(config)

  @parallel.jit
  def init(key):
    kg, kd, kn = jax.random.split(key, 3)
    g_params = gen.init(kg, jnp.zeros((1, zd)), jax.random.split(kn, 1))['params']
    d_params = disc.init(kd, jnp.zeros((1, size, size, 1)))['params']
    # g_ema is a copy: donating the state must not see one buffer twice.
    return TrainState(
      step=jnp.zeros((), jnp.int32),
      g=g_params,
      d=d_params,
      g_ema=jax.tree.map(lambda x: x + 0, g_params),
      g_opt=g_tx.init(g_params),
      d_opt=d_tx.init(d_params),
      w_avg=jnp.zeros((int(config.identity_gan.w_dim),), jnp.float32),
    )

  return init


def _make_ws(gen, params, z, z2, mix_key, mixing_prob):
  """Mapping + per-sample style mixing: after a random cutoff layer, styles come from a second z."""
  w = gen.apply({'params': params}, z, method=gen.mapping)
  ws = jnp.broadcast_to(w[:, None], (w.shape[0], gen.num_ws, w.shape[-1]))
  if mixing_prob > 0:
    w2 = gen.apply({'params': params}, z2, method=gen.mapping)
    k1, k2 = jax.random.split(mix_key)
    cutoff = jax.random.randint(k1, (w.shape[0],), 1, gen.num_ws)
    cutoff = jnp.where(jax.random.uniform(k2, (w.shape[0],)) < mixing_prob, cutoff, gen.num_ws)
    ws = jnp.where((jnp.arange(gen.num_ws)[None, :] < cutoff[:, None])[..., None], ws, w2[:, None])
  return ws, w


def make_train_steps(config):
  """(main_step, r1_step), jitted over the mesh, both (state, batch{'image' uint8}, nan_step) -> (state, m).

  main_step: one D step (logistic loss) then one G step (non-saturating loss, style mixing) on the same
  batch of fakes, EMA and w_avg updates. r1_step: the lazy R1 penalty as its own D step (StyleGAN2's
  "Dreg"), run before the main step on every r1_every-th step. `nan_step` (int32 scalar) poisons that
  step's losses with NaN (tests).
  """
  return _cached(_train_steps, config)


def _train_steps(config):
  g = config.identity_gan
  gen, disc = stylegan.from_config(config)
  g_tx, d_tx = _optimizers(config)
  base_key = jax.random.PRNGKey(config.seed)
  batch_size = int(g.batch_size)
  ema_beta = 0.5 ** (batch_size / max(float(g.ema_half_life_images), 1e-8))
  r1_weight = 0.5 * float(g.r1_gamma) * int(g.r1_every)  # lazy: gamma/2 * r1_every, r1_every times as rarely
  mixing_prob, zd = float(g.style_mixing_prob), int(g.z_dim)

  def fake_images(params, key):
    kz, kz2, km, kn = jax.random.split(key, 4)
    z = jax.random.normal(kz, (batch_size, zd))
    z2 = jax.random.normal(kz2, (batch_size, zd))
    ws, w = _make_ws(gen, params, z, z2, km, mixing_prob)
    return gen.apply({'params': params}, ws, jax.random.split(kn, batch_size), method=gen.synthesis), w

  def main_step(state, batch, nan_step):
    key = jax.random.fold_in(base_key, state.step)
    poison = jnp.where(state.step == nan_step, jnp.nan, 1.0)
    real = pixels.to_unit(batch['image'])
    # One G pass serves both updates: D learns from these fakes, then G's gradient flows back through the
    # same pass (its VJP) as the updated D scores them. A separate forward for D's fakes would add about a
    # third of G's forward+backward.
    fake, g_vjp, w = jax.vjp(lambda p: fake_images(p, key), state.g, has_aux=True)

    def d_loss_fn(d_params):
      logits_fake = disc.apply({'params': d_params}, fake)
      logits_real = disc.apply({'params': d_params}, real)
      loss = losses.logistic_d(logits_real, logits_fake) * poison
      return loss, dict(d_loss=loss, d_real=jnp.mean(logits_real), d_fake=jnp.mean(logits_fake))

    (_, d_metrics), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d)
    d_updates, d_opt = d_tx.update(d_grads, state.d_opt, state.d)
    d_params = optax.apply_updates(state.d, d_updates)

    def g_loss_fn(img):
      return losses.logistic_g(disc.apply({'params': d_params}, img)) * poison

    g_loss, d_fake_img = jax.value_and_grad(g_loss_fn)(fake)
    (g_grads,) = g_vjp(d_fake_img)
    g_updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g)
    g_params = optax.apply_updates(state.g, g_updates)
    g_ema = lib.ema(state.g_ema, g_params, ema_beta)
    w_mean = jnp.mean(w, axis=0)
    w_avg = w_mean + (state.w_avg - w_mean) * W_AVG_BETA
    new = TrainState(step=state.step + 1, g=g_params, d=d_params, g_ema=g_ema, g_opt=g_opt, d_opt=d_opt, w_avg=w_avg)
    return new, dict(
      g_loss=g_loss, g_grad_norm=optax.global_norm(g_grads), d_grad_norm=optax.global_norm(d_grads), **d_metrics
    )

  def r1_step(state, batch, nan_step):
    poison = jnp.where(state.step == nan_step, jnp.nan, 1.0)
    real = pixels.to_unit(batch['image'])

    def r1_fn(d_params):
      r1 = losses.r1(lambda x: disc.apply({'params': d_params}, x), real) * poison
      return r1_weight * r1, r1

    (_, r1), grads = jax.value_and_grad(r1_fn, has_aux=True)(state.d)
    updates, d_opt = d_tx.update(grads, state.d_opt, state.d)
    return state.replace(d=optax.apply_updates(state.d, updates), d_opt=d_opt), dict(
      r1=r1, r1_grad_norm=optax.global_norm(grads)
    )

  jit = functools.partial(parallel.data_parallel, batch_argnums=(1,), donate_argnums=(0,))
  return jit(main_step), jit(r1_step)


# ---------------------------------------------------------------------------------------------- restore


def generator_from_state(config, state, ema=True):
  return generators.identity_generator(
    config, state.g_ema if ema else state.g, state.w_avg, int(np.asarray(state.step))
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
    shapes = _cached(_init_fn, config).eval_shape(jax.random.PRNGKey(0))
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


# ------------------------------------------------------------------------------------------- training


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


def _write_grid(generator, key, workdir):
  """samples/identities.png: GRID x GRID faces of fixed latents; returns them."""
  faces = generators.sample_identities(generator, key, GRID * GRID, batch_size=GRID * GRID)
  rows = [list(faces[r * GRID : (r + 1) * GRID]) for r in range(GRID)]
  grids.save_grid(rows, os.path.join(workdir, 'samples', 'identities.png'), cell=0.8)
  return faces


def _evaluate(evaluator, generator, config, key):
  g = config.identity_gan
  n = int(g.eval_samples)
  out = evaluator.score(generators.sample_identities(generator, key, n, psi=1.0, batch_size=GRID * GRID))
  truncated = generators.sample_identities(generator, key, n, psi=float(g.psi), batch_size=GRID * GRID)
  out['fd_truncated'] = evaluator.score(truncated)['fd']
  out['psi_truncated'] = float(g.psi)
  return out


@workdirs.stage(*CONFIG_KEYS)
def train_and_evaluate(config, workdir):
  """Trains the identity GAN in `workdir` (resuming if it holds a checkpoint); returns the final metrics."""

  check_config(config)
  g = config.identity_gan
  os.makedirs(workdir, exist_ok=True)
  pool = pool_lib.load_pool(config, workdir)
  counts = pool.describe()
  logging.info(
    'identity GAN: %d training images of %d subjects; %d held-out images of %d subjects',
    *(counts[k] for k in ('train_images', 'train_subjects', 'holdout_images', 'holdout_subjects')),
  )

  key = jax.random.PRNGKey(config.seed)
  state = parallel.replicate(init_state(config, key))
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'))
  writer = writers.create_writer(os.path.join(workdir, 'tensorboard'))
  metrics_path = os.path.join(workdir, workdirs.METRICS)
  sample_key = jax.random.fold_in(key, 1 << 30)
  eval_key = jax.random.fold_in(key, (1 << 30) + 1)
  total = int(g.steps)
  try:
    t0 = time.time()
    evaluator = gan_metrics.Evaluator(
      instruments.identity(config, workdir, pool), pool.train_images, pool.images[pool.holdout_idx]
    )

    def baselines():
      untrained = _evaluate(
        evaluator, generator_from_state(config, parallel.replicate(init_state(config, key))), config, eval_key
      )
      return dict(untrained_generator=untrained, **evaluator.baselines(int(g.eval_samples), config.seed))

    fp = evaluator.net_info['fingerprint']
    done = workdirs.finished(workdir, {'step': total, 'feature_net.fingerprint': fp})
    if ckpt.latest_step() == total and done is not None:
      logging.info('identity GAN: already trained and evaluated in %s', workdir)
      return done
    restored, meta = lib.resume(ckpt, state, 'identity GAN')
    if restored is not None:
      state = restored
      if meta.get('feature_net') != fp:  # the metrics' feature net changed: old scores are not comparable
        logging.info('identity GAN: feature net changed; recomputing baselines, dropping old scores')
        meta.update(feature_net=fp, history=[], baselines=baselines())
    else:
      meta = dict(step=0, history=[], feature_net=fp, baselines=baselines())
    setup_seconds = time.time() - t0
    step = int(meta['step'])
    if int(np.asarray(state.step)) != step:
      raise UserError(
        f'checkpoint in {ckpt.directory} is inconsistent (state step {int(state.step)}, '
        f'meta step {step}); delete it to restart'
      )

    main_step, r1_step = make_train_steps(config)
    nan_step = parallel.replicate(jnp.int32(g.debug_nan_step))
    batches = pool_lib.batches(pool.train_dataset(), int(g.batch_size), config.seed, step, 'identity_gan.batch_size')
    pending, pending_r1, first = [], [], step
    t_train = time.time()
    bar = tqdm(total=total, initial=step, desc='identity GAN', unit='step', dynamic_ncols=True, disable=None)
    while step < total:
      batch = parallel.shard_batch({'image': next(batches)['image']})
      if step % int(g.r1_every) == 0:
        state, m = r1_step(state, batch, nan_step)
        pending_r1.append(m)
      state, m = main_step(state, batch, nan_step)
      pending.append(m)
      step += 1
      bar.update(1)
      at_ckpt = lib.every(step, g.checkpoint_every, total)
      at_sample = lib.every(step, g.sample_every, total)
      if lib.every(step, g.log_every) or at_ckpt or at_sample:
        host = parallel.to_host(jax.tree.map(lambda *x: jnp.stack(x), *pending))
        if pending_r1:
          host.update(parallel.to_host(jax.tree.map(lambda *x: jnp.stack(x), *pending_r1)))
        lib.check_finite(
          host,
          ckpt,
          lambda bad, first=first, last=step - 1: (
            f'identity GAN diverged: non-finite {", ".join(bad)} between steps {first} and {last}'
          ),
          hint='Try a lower identity_gan.lr or a larger identity_gan.r1_gamma.',
        )
        means = {k: float(np.mean(v)) for k, v in host.items()}
        means['img_per_s'] = len(pending) * int(g.batch_size) / max(time.time() - t_train, 1e-9)
        writer.write_scalars(step, means)
        bar.set_postfix(g=f'{means["g_loss"]:.3f}', d=f'{means["d_loss"]:.3f}')
        pending, pending_r1, first, t_train = [], [], step, time.time()
      if at_sample:
        gen = generator_from_state(config, state)
        grid = _write_grid(gen, sample_key, workdir)
        writer.write_images(step, {'identities': grid[:16]})
        scores = _evaluate(evaluator, gen, config, eval_key)
        meta['history'].append(dict(step=step, **scores))
        writer.write_scalars(step, {f'eval/{k}': v for k, v in scores.items() if isinstance(v, float)})
      if at_ckpt:
        meta['step'] = step
        ckpt.save(step, state, meta)
      writer.flush()
      t_train = time.time() if at_sample else t_train
    bar.close()

    if not meta['history'] or meta['history'][-1]['step'] != total:  # resumed after the last eval
      gen = generator_from_state(config, state)
      _write_grid(gen, sample_key, workdir)
      meta['history'].append(dict(step=total, **_evaluate(evaluator, gen, config, eval_key)))
    final = meta['history'][-1]
    gen_nets = stylegan.from_config(config)
    result = dict(
      step=total,
      **{k: final[k] for k in ('fd', 'precision', 'recall', 'fd_truncated', 'psi_truncated')},
      n_generated=final['n_generated'],
      n_reference=final['n_reference'],
      # Real faces of the GAN-training subjects score what real data scores, but they are no floor: they
      # come many per person from people the feature net was trained to tell apart, while generated
      # faces are independent new identities (the trained quick generator scores below them).
      fd_minus_real_faces={
        name: fd - meta['baselines']['real_train_pool']['fd']
        for name, fd in (
          ('trained', final['fd']),
          ('untrained_generator', meta['baselines']['untrained_generator']['fd']),
          ('pixel_gaussian', meta['baselines']['pixel_gaussian']['fd']),
        )
      },
      baselines=meta['baselines'],
      history=meta['history'],
      feature_net=dict(
        evaluator.net_info,
        why='penultimate layer of a CNN trained to classify pool subject ids across '
        'all expressions: it sees identity (face shape, tones, hair, geometry), not only '
        'expression',
      ),
      reference='held-out pool subjects (never seen by the GAN nor the identity net)',
      pool=counts,
      params=dict(generator=layers.count_params(state.g), discriminator=layers.count_params(state.d)),
      num_ws=gen_nets[0].num_ws,
      setup_seconds=setup_seconds,
      devices=jax.device_count(),
    )
    io_utils.write_json(metrics_path, result)
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
