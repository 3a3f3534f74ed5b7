"""Expression GAN trainer: StarGAN (optionally GANimation's attention output) on the GAN pool's 7 classes.

`train_and_evaluate(config, workdir)` trains on split `pool` of `config.data.pool_sources`, holding out
`expression_gan.holdout_subjects` pool subjects, then evaluates on those held-out faces (with a procedural
pool, also against ground truth: `fer_jax.eval.ground_truth`) and writes WORKDIR/metrics.json and
WORKDIR/samples/expressions.png.

Training follows StarGAN: every step is one critic update (WGAN loss + class loss on real faces + gradient
penalty); every `n_critic`-th step is followed by one generator update (adversarial + target class +
lambda_rec * cycle L1) on the same batch and targets. Adam (betas from the config) for both, the learning
rate decaying linearly to 0 over the second half. G and D have separate optax states; the EMA of G's
params is updated inside the jitted generator step and is what `translate` uses. With `cls_augment` the
critic's class head reads real faces (learning) and generated ones (scoring the generator) through the same
random shift/blur/noise (`fer_jax.augment`), so a target class cannot be passed with a few isolated pixels.

Resumability: the state (incl. step and PRNG key) is checkpointed; per-step randomness is
fold_in(key, step); the data order is a function of (seed, epoch), and a resumed run starts at the batch
where the checkpoint stopped, so kill + rerun gives the same final state as an uninterrupted run.

Translation API (used by the synthetic-set generator):
    params = load_generator(workdir, config)            # EMA generator params of the finished run
    translate = make_translate_fn(config)               # jitted, deterministic
    faces = translate(params, images, target_labels)    # uint8 in -> uint8 out; float [-1,1] -> float
"""

import functools
import math
import os
import time
from typing import Any, NamedTuple

from absl import logging
import flax
import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from fer_jax import augment, io_utils, parallel, pixels, workdirs, writers
from fer_jax.checkpointing import Checkpointer
from fer_jax.data import emotions, pipeline, sources
from fer_jax.errors import UserError
from fer_jax.eval import ground_truth, identity_net, pool_judge
from fer_jax.models import layers, stargan
from fer_jax.train import lib

# The config keys this stage's results depend on: its workdir records them (`workdirs`).
CONFIG_KEYS = ('seed', 'data.pool_sources', *workdirs.DATA_KEYS, 'expression_gan')

# ------------------------------------------------------------------------------------------ hyperparams


class Hparams(NamedTuple):
  """The config fields that shape the compiled programs (hashable: the jit cache key)."""

  image_size: int
  channels: int
  c_dim: int
  conv_dim: int
  repeat_num: int
  d_repeat_num: int
  attention: bool
  cls_augment: bool
  lambda_cls: float
  lambda_rec: float
  lambda_gp: float
  lambda_mask: float
  lambda_tv: float
  lambda_id: float
  g_lr: float
  d_lr: float
  beta1: float
  beta2: float
  steps: int
  n_critic: int
  ema_decay: float
  ema_warmup: bool
  conv_impl: str
  dtype: str


def hparams(config):
  e = config.expression_gan
  if e.num_classes != len(emotions.EMOTIONS):
    raise UserError(
      f'expression_gan.num_classes={e.num_classes}; the GAN pool has '
      f'{len(emotions.EMOTIONS)} classes ({", ".join(emotions.EMOTIONS)})'
    )
  if e.conv_impl not in layers.CONV_IMPLS:
    raise UserError(
      f'expression_gan.conv_impl={e.conv_impl!r}; expected one of {", ".join(layers.CONV_IMPLS)} (xla for GPU/TPU)'
    )
  if e.dtype not in ('float32', 'bfloat16'):
    raise UserError(f'expression_gan.dtype={e.dtype!r}; expected float32 or bfloat16')
  if e.n_critic < 1:
    raise UserError(f'expression_gan.n_critic={e.n_critic}; expected a positive integer')
  if e.steps < 1:
    raise UserError(f'expression_gan.steps={e.steps}; expected a positive integer')
  size = int(config.data.image_size)
  if size % 4 or size // 2**e.d_repeat_num < 1:
    raise UserError(
      f'data.image_size={size} does not fit the GAN: it must be a multiple of 4 and at least '
      f'2**expression_gan.d_repeat_num={2**e.d_repeat_num}'
    )
  b1, b2 = e.betas
  return Hparams(
    size,
    1,
    int(e.num_classes),
    int(e.conv_dim),
    int(e.repeat_num),
    int(e.d_repeat_num),
    bool(e.attention),
    bool(e.cls_augment),
    float(e.lambda_cls),
    float(e.lambda_rec),
    float(e.lambda_gp),
    float(e.lambda_mask),
    float(e.lambda_tv),
    float(e.lambda_id),
    float(e.g_lr),
    float(e.d_lr),
    float(b1),
    float(b2),
    int(e.steps),
    int(e.n_critic),
    float(e.ema_decay),
    bool(e.ema_warmup),
    str(e.conv_impl),
    str(e.dtype),
  )


def models(hp):
  dtype = jnp.dtype(hp.dtype)
  g = stargan.Generator(hp.channels, hp.conv_dim, hp.c_dim, hp.repeat_num, hp.attention, hp.conv_impl, dtype)
  d = stargan.Discriminator(hp.image_size, hp.conv_dim, hp.c_dim, hp.d_repeat_num, hp.conv_impl, dtype)
  return g, d


def _schedule(lr, total):
  """Constant, then linear decay to 0 over the second half of `total` updates (StarGAN)."""
  half = total // 2
  return optax.join_schedules(
    [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, max(total - half, 1))], [half]
  )


def _optimizers(hp):
  g_total = max(hp.steps // hp.n_critic, 1)
  g_tx = optax.adam(_schedule(hp.g_lr, g_total), b1=hp.beta1, b2=hp.beta2)
  d_tx = optax.adam(_schedule(hp.d_lr, hp.steps), b1=hp.beta1, b2=hp.beta2)
  return g_tx, d_tx


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # critic updates done = batches consumed
  g_count: jax.Array  # generator updates done
  key: jax.Array  # raw uint32 PRNG key; per-step keys are fold_in(key, step)
  g_params: Any
  d_params: Any
  g_ema: Any
  g_opt: Any
  d_opt: Any


def _one_hot(labels, c_dim):
  labels = jnp.asarray(labels)
  return labels.astype(jnp.float32) if labels.ndim == 2 else jax.nn.one_hot(labels, c_dim)


def _tv(mask):
  return jnp.abs(mask[:, 1:] - mask[:, :-1]).mean() + jnp.abs(mask[:, :, 1:] - mask[:, :, :-1]).mean()


class Programs(NamedTuple):
  init: Any
  d_step: Any  # one critic update
  dg_step: Any  # a critic update, then a generator update on the same batch and targets (one program)
  g_step: Any  # the generator update alone, after d_step (the reference dg_step is tested against)
  all_finite: Any


@functools.lru_cache(maxsize=None)
def programs(hp):
  """The jitted programs of one configuration (cached so that repeated runs in a process compile once)."""
  g_model, d_model = models(hp)
  g_tx, d_tx = _optimizers(hp)
  c_dim = hp.c_dim

  def init(seed):
    # Weights are drawn with the 'rbg' PRNG: XLA:CPU takes ~30 s to compile threefry for every weight
    # tensor of the init program, rbg a few. Per-step randomness stays threefry (`key`), whose values do
    # not depend on how the batch is sharded.
    init_key = jax.random.key(seed, impl='rbg')
    x = jnp.zeros((1, hp.image_size, hp.image_size, hp.channels), jnp.float32)
    g_params = g_model.init(jax.random.fold_in(init_key, 1), x, jnp.zeros((1, c_dim)))
    d_params = d_model.init(jax.random.fold_in(init_key, 2), x)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 3)
    return TrainState(
      step=jnp.zeros((), jnp.int32),
      g_count=jnp.zeros((), jnp.int32),
      key=key,
      g_params=g_params,
      d_params=d_params,
      g_ema=g_params,
      g_opt=g_tx.init(g_params),
      d_opt=d_tx.init(d_params),
    )

  def iteration_inputs(state, batch, critic_step):
    x = pixels.to_unit(batch['image'])
    org = batch['label']
    # One c_trg per iteration (StarGAN): the critic and the generator step on the same targets.
    k = jax.random.fold_in(state.key, critic_step)
    trg = jax.random.randint(jax.random.fold_in(k, 0), org.shape, 0, c_dim)
    alpha = jax.random.uniform(jax.random.fold_in(k, 1), (x.shape[0], 1, 1, 1))
    return x, org, trg, alpha, k

  def classify(dp, images, key):
    """The critic's class logits; with cls_augment, of shifted, blurred, noisy images (`fer_jax.augment`)."""
    return d_model.apply(dp, augment.shift_noise(key, images, blur=True))[1]

  def critic_update(state, x, org, fake, alpha, k):
    def loss_fn(dp):
      src_real, cls_real = d_model.apply(dp, x)
      if hp.cls_augment:
        cls_real = classify(dp, x, jax.random.fold_in(k, 2))
      src_fake, _ = d_model.apply(dp, fake)
      x_hat = alpha * x + (1.0 - alpha) * fake
      grad = jax.grad(lambda xh: d_model.apply(dp, xh)[0].sum())(x_hat)
      gnorm = jnp.sqrt(jnp.sum(grad.reshape(grad.shape[0], -1) ** 2, axis=1) + 1e-12)
      gp = jnp.mean((gnorm - 1.0) ** 2)
      cls = optax.softmax_cross_entropy_with_integer_labels(cls_real, org).mean()
      adv = src_fake.mean() - src_real.mean()
      loss = adv + hp.lambda_cls * cls + hp.lambda_gp * gp
      acc = jnp.mean(jnp.argmax(cls_real, -1) == org)
      return loss, dict(
        d_loss=loss, d_adv=adv, d_cls=cls, gp=gp, d_real_acc=acc, wasserstein=src_real.mean() - src_fake.mean()
      )

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
    updates, d_opt = d_tx.update(grads, state.d_opt, state.d_params)
    d_params = optax.apply_updates(state.d_params, updates)
    return state.replace(step=state.step + 1, d_params=d_params, d_opt=d_opt), metrics

  def d_step(state, batch):
    x, org, trg, alpha, k = iteration_inputs(state, batch, state.step)
    fake = g_model.apply(state.g_params, x, jax.nn.one_hot(trg, c_dim))
    return critic_update(state, x, org, fake, alpha, k)

  def generator_losses(gp_, d_params, x, org, trg, fake, mask, k):
    """The generator's loss given its first pass (fake, mask) = G(x, c_trg); gp_ enters via the others."""
    src, cls = d_model.apply(d_params, fake)
    if hp.cls_augment:
      cls = classify(d_params, fake, jax.random.fold_in(k, 3))
    rec, rmask = g_model.apply(gp_, fake, jax.nn.one_hot(org, c_dim), return_mask=True)
    adv = -src.mean()
    cls_loss = optax.softmax_cross_entropy_with_integer_labels(cls, trg).mean()
    rec_loss = jnp.abs(x - rec).mean()
    loss = adv + hp.lambda_cls * cls_loss + hp.lambda_rec * rec_loss
    metrics = dict(g_adv=adv, g_cls=cls_loss, g_rec=rec_loss, g_trg_acc=jnp.mean(jnp.argmax(cls, -1) == trg))
    if hp.lambda_id:
      # Identity mapping (CycleGAN's L_idt): asked for its own class, G returns the input. The cycle
      # alone also accepts global changes that undo themselves (e.g. inverted brightness) as identity.
      same = g_model.apply(gp_, x, jax.nn.one_hot(org, c_dim))
      id_loss = jnp.abs(x - same).mean()
      loss = loss + hp.lambda_id * id_loss
      metrics['g_id'] = id_loss
    if hp.attention:
      # GANimation: L1 keeps the mask from saturating at 1 (copy the input, a trivial cycle), TV keeps
      # it smooth.
      reg = hp.lambda_mask * (mask.mean() + rmask.mean()) + hp.lambda_tv * (_tv(mask) + _tv(rmask))
      loss = loss + reg
      metrics.update(mask_mean=mask.mean(), mask_reg=reg)
    metrics['g_loss'] = loss
    return loss, metrics

  def dg_step(state, batch):
    """A critic update, then a generator update on the same batch and targets.

    The critic's fake and the generator's first pass are the same G(x, c_trg) on unchanged G weights, so
    it is computed once, with its VJP kept for the generator update (one G pass of ~7 saved). The
    generator's gradient is the sum of that pass's VJP and the direct gradient of the other passes.
    """
    x, org, trg, alpha, k = iteration_inputs(state, batch, state.step)
    (fake, mask), first_vjp = jax.vjp(
      lambda gp_: g_model.apply(gp_, x, jax.nn.one_hot(trg, c_dim), return_mask=True), state.g_params
    )
    state, d_metrics = critic_update(state, x, org, jax.lax.stop_gradient(fake), alpha, k)
    (_, g_metrics), (g_direct, d_fake, d_mask) = jax.value_and_grad(generator_losses, argnums=(0, 5, 6), has_aux=True)(
      state.g_params, state.d_params, x, org, trg, fake, mask, k
    )
    (g_first,) = first_vjp((d_fake, d_mask))
    return generator_update(state, jax.tree.map(jnp.add, g_direct, g_first)), (d_metrics, g_metrics)

  def generator_update(state, grads):
    updates, g_opt = g_tx.update(grads, state.g_opt, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)
    n = state.g_count.astype(jnp.float32)
    decay = jnp.minimum(hp.ema_decay, (1.0 + n) / (10.0 + n)) if hp.ema_warmup else hp.ema_decay
    g_ema = lib.ema(state.g_ema, g_params, decay)
    return state.replace(g_count=state.g_count + 1, g_params=g_params, g_opt=g_opt, g_ema=g_ema)

  def g_step(state, batch):
    """The generator update after a critic step on `batch`, written plainly (G(x, c_trg) recomputed inside
    the differentiated loss): the reference `dg_step` is tested against."""
    x, org, trg, _, k = iteration_inputs(state, batch, state.step - 1)

    def loss_fn(gp_):
      fake, mask = g_model.apply(gp_, x, jax.nn.one_hot(trg, c_dim), return_mask=True)
      return generator_losses(gp_, state.d_params, x, org, trg, fake, mask, k)

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
    return generator_update(state, grads), metrics

  def all_finite(state):
    leaves = jax.tree.leaves((state.g_params, state.d_params, state.g_ema))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))

  return Programs(
    init=parallel.data_parallel(init, batch_argnums=(), static_argnums=(0,)),
    d_step=parallel.data_parallel(d_step, batch_argnums=(1,), donate_argnums=(0,)),
    dg_step=parallel.data_parallel(dg_step, batch_argnums=(1,), donate_argnums=(0,)),
    g_step=parallel.data_parallel(g_step, batch_argnums=(1,), donate_argnums=(0,)),
    all_finite=parallel.data_parallel(all_finite, batch_argnums=()),
  )


# ---------------------------------------------------------------------------------------------- data


class Pool(NamedTuple):
  source: Any  # random-access TFDS source of the pool split
  train_idx: np.ndarray  # records of the GAN's training subjects
  holdout_idx: np.ndarray  # records of the held-out subjects
  images: np.ndarray  # all records, uint8 [N,H,W,1] (evaluation instruments and held-out faces)
  labels: np.ndarray
  subjects: np.ndarray


def load_pool(config, workdir):
  """The GAN pool (all pool sources concatenated) split into training and held-out subjects."""
  srcs = sources.parse_sources(config.data.pool_sources, 'data.pool_sources')
  parts = [sources.load(s, 'pool', config, workdir) for s in srcs]

  ds = (
    grain.MapDataset.source(parts[0])
    if len(parts) == 1
    else grain.MapDataset.concatenate([grain.MapDataset.source(p) for p in parts])
  )
  n = len(ds)
  if n == 0:
    raise UserError(f'the GAN pool {config.data.pool_sources} is empty')
  recs = [ds[i] for i in range(n)]
  images = np.stack([np.asarray(r['image'], np.uint8) for r in recs])
  labels = np.array([int(r['label']) for r in recs], np.int32)
  # Subject ids are per source; offset them so that two sources never share an id.
  subjects, off = np.empty(n, np.int64), 0
  for p, start in zip(parts, np.cumsum([0] + [len(p) for p in parts[:-1]])):
    s = np.array([int(recs[start + i]['subject']) for i in range(len(p))], np.int64)
    subjects[start : start + len(p)] = s + off
    off += int(s.max()) + 1
  if images.shape[1] != config.data.image_size or images.shape[-1] != 1:
    raise UserError(
      f'GAN pool images are {images.shape[1:]}; expected ({config.data.image_size}, '
      f'{config.data.image_size}, 1) (data.image_size, greyscale)'
    )
  uniq = np.unique(subjects)
  h = int(config.expression_gan.holdout_subjects)
  if not 1 <= h < len(uniq):
    raise UserError(
      f'expression_gan.holdout_subjects={h}; the pool has {len(uniq)} subjects, so expected 1..{len(uniq) - 1}'
    )
  held = np.sort(np.random.default_rng(config.seed).choice(uniq, h, replace=False))
  is_held = np.isin(subjects, held)
  return Pool(ds, np.nonzero(~is_held)[0], np.nonzero(is_held)[0], images, labels, subjects)


def _record(r):
  return {'image': np.asarray(r['image'], np.uint8), 'label': np.int32(r['label'])}


def train_dataset(pool):
  """grain MapDataset of the training subjects' records ({'image', 'label'})."""

  idx = pool.train_idx
  src = pool.source
  return grain.MapDataset.range(len(idx)).map(lambda j: _record(src[int(idx[j])]))


def epoch_batches(ds, global_batch_size, seed, epoch, start=0):
  """Batches `start`, `start+1`, ... of one epoch; the order is a function of (seed, epoch) only."""

  local = pipeline.process_rows(pipeline.shuffled(ds, seed, epoch), global_batch_size)
  batched = local.batch(global_batch_size // jax.process_count(), drop_remainder=True)
  return batched.slice(slice(start, None)).to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4))


def batches(ds, global_batch_size, seed, start_step):
  """Endless stream of batches from global step `start_step` on (epoch after epoch)."""
  spe = len(ds) // global_batch_size
  if spe < 1:
    raise UserError(
      f'expression_gan.batch_size={global_batch_size} exceeds the {len(ds)} training faces of the GAN pool'
    )
  step = start_step
  while True:
    epoch, i = divmod(step, spe)
    for b in epoch_batches(ds, global_batch_size, seed, epoch, i):
      yield b
      step += 1


# --------------------------------------------------------------------------------------------- train


def _checkpointer(workdir):

  return Checkpointer(os.path.join(workdir, 'checkpoints'))


def state_template(config):
  hp = hparams(config)
  progs = programs(hp)
  abstract = progs.init.eval_shape(int(config.seed))
  sharding = parallel.replicated()
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)


def check_config(config):
  """The settings training needs beyond `hparams` (which generation needs too); returns the hparams."""
  hp = hparams(config)
  e = config.expression_gan
  for name in ('g_lr', 'd_lr'):
    if not (isinstance(e[name], (int, float)) and math.isfinite(e[name]) and e[name] > 0):
      raise UserError(f'expression_gan.{name}={e[name]!r}; expected a number > 0')
  devices = parallel.make_mesh().size
  if e.batch_size < 1 or e.batch_size % devices:
    raise UserError(f'expression_gan.batch_size={e.batch_size}; expected a positive multiple of the {devices} devices')
  sources.check_pool_disjoint(config)
  return hp


def train(config, workdir, pool=None):
  """Trains (or resumes) the GAN; returns (state, last logged scalars)."""

  hp = check_config(config)
  e = config.expression_gan
  bs = int(e.batch_size)
  pool = pool if pool is not None else load_pool(config, workdir)
  ds = train_dataset(pool)
  progs = programs(hp)
  ckpt = _checkpointer(workdir)
  state, meta = lib.resume(ckpt, state_template(config), 'expression GAN')
  if state is None:
    state, meta = progs.init(int(config.seed)), {}
  last_scalars = meta.get('scalars', {})
  start = int(parallel.to_host(state.step))
  writer = writers.create_writer(os.path.join(workdir, 'tensorboard'))
  if start >= hp.steps:
    ckpt.close()
    return state, last_scalars
  stream = batches(ds, bs, config.seed, start)
  faces, truth = sample_faces(config, pool)
  d_metrics = g_metrics = None
  t0, timed_from = time.time(), start
  bar = tqdm(total=hp.steps, initial=start, desc='expression GAN', unit='step', dynamic_ncols=True, disable=None)
  try:
    for step in range(start, hp.steps):
      batch = next(stream)
      batch = parallel.shard_batch({'image': batch['image'], 'label': batch['label']})
      if (step + 1) % hp.n_critic == 0:
        state, (d_metrics, g_metrics) = progs.dg_step(state, batch)
      else:
        state, d_metrics = progs.d_step(state, batch)
      done = step + 1
      bar.update(1)
      is_last = done == hp.steps
      if done % e.log_every == 0 or done % e.checkpoint_every == 0 or is_last:
        scalars = {k: float(v) for k, v in parallel.to_host(d_metrics).items()}
        if g_metrics is not None:
          scalars.update({k: float(v) for k, v in parallel.to_host(g_metrics).items()})
        params_finite = bool(parallel.to_host(progs.all_finite(state)))
        lib.check_finite(
          dict(scalars, parameters=0.0 if params_finite else np.nan),
          ckpt,
          lambda bad, done=done: f'expression GAN diverged by step {done}: non-finite {", ".join(bad)}',
          hint='Try a lower expression_gan.g_lr/d_lr.',
        )
        dt = time.time() - t0
        scalars['steps_per_s'] = (done - timed_from) / max(dt, 1e-9)
        t0, timed_from = time.time(), done
        writer.write_scalars(done, scalars)
        last_scalars = scalars
        bar.set_postfix({k: f'{scalars[k]:.3g}' for k in ('d_loss', 'g_rec', 'g_trg_acc', 'mask_mean') if k in scalars})
        if done % e.checkpoint_every == 0 or is_last:
          ckpt.save(done, state, {'step': done, 'scalars': last_scalars})
      if done % e.sample_every == 0 and not is_last:  # the final grid is train_and_evaluate's
        write_samples(config, workdir, state.g_ema, faces, writer, done, truth)
  finally:
    bar.close()
    writer.flush()
    ckpt.close()
  return state, last_scalars


# ----------------------------------------------------------------------------------------- translate


@functools.lru_cache(maxsize=None)
def _translate_program(hp):
  g_model, _ = models(hp)

  @parallel.jit
  def translate(g_params, images, target_labels):
    out = g_model.apply(g_params, pixels.to_unit(images), _one_hot(target_labels, hp.c_dim))
    if jnp.issubdtype(images.dtype, jnp.integer):
      return pixels.to_uint8(out)
    return out

  @parallel.jit
  def translate_with_mask(g_params, images, target_labels):
    return g_model.apply(g_params, pixels.to_unit(images), _one_hot(target_labels, hp.c_dim), return_mask=True)

  return translate, translate_with_mask


def make_translate_fn(config):
  """-> translate(g_params, images, target_labels) -> images, jitted and deterministic.

  images: uint8 [N,H,W,1] (returns uint8) or float [N,H,W,1] in [-1, 1] (returns float in [-1, 1]);
  target_labels: int [N] (indices into fer_jax.data.emotions.EMOTIONS) or one-hot [N, 7].
  """
  return _translate_program(hparams(config))[0]


def load_generator(workdir, config):
  """EMA generator params of the newest checkpoint in WORKDIR/checkpoints."""
  ckpt = _checkpointer(workdir)
  try:
    if ckpt.latest_step() is None:
      raise FileNotFoundError(
        f'no expression GAN checkpoint in {ckpt.directory}; train it first (python -m experiments.train_expression_gan)'
      )
    state, _ = ckpt.restore(state_template(config))
  finally:
    ckpt.close()
  return state.g_ema


def translate_all(config, g_params, images, targets, batch_size=None):
  """Translates numpy arrays in fixed-size batches (one compile); -> (uint8 images, masks or None)."""
  _, fn = _translate_program(hparams(config))
  bs = int(batch_size or config.expression_gan.eval_batch_size)
  out, mask = parallel.map_batches(lambda x, t: fn(g_params, x, t), (images, targets), bs)
  return pixels.to_uint8(out), mask


# ------------------------------------------------------------------------------------------- samples


def sample_faces(config, pool):
  """Fixed held-out faces for the grid: the first record of each of the first `sample_faces` subjects, and
  their ground truth for every target (None without a procedural pool)."""
  held = pool.holdout_idx
  chosen, seen = [], set()
  for i in held:
    s = int(pool.subjects[i])
    if s not in seen:
      seen.add(s)
      chosen.append(i)
    if len(chosen) == config.expression_gan.sample_faces:
      break
  chosen = np.array(chosen)
  images = pool.images[chosen]
  return images, ground_truth.truth_for(config, images, pool.subjects[chosen])


def write_samples(config, workdir, g_params, faces, writer=None, step=None, truth=None):
  """WORKDIR/samples/expressions.png: rows = held-out faces; input, then the 7 targets. With `truth`
  ([n, 7, H, W, 1], `sample_faces`), each face's row is followed by its ground truth for every target."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  n, c = len(faces), len(emotions.EMOTIONS)
  imgs = np.repeat(faces, c, 0)
  targets = np.tile(np.arange(c), n)
  out, _ = translate_all(config, g_params, imgs, targets)
  grid = np.concatenate([faces[:, None], out.reshape(n, c, *out.shape[1:])], axis=1)  # [n, 1+c, H, W, 1]
  rows = [(grid[r], 'GAN') for r in range(n)]
  if truth is not None:
    blank = np.full_like(faces[:1], 255)
    rows = [row for r in range(n) for row in ((grid[r], 'GAN'), (np.concatenate([blank, truth[r]]), 'truth'))]
  fig, axes = plt.subplots(len(rows), c + 1, figsize=(1.2 * (c + 1), 1.2 * len(rows) + 0.4), squeeze=False)
  for r, (row, kind) in enumerate(rows):
    for k in range(c + 1):
      ax = axes[r, k]
      ax.imshow(row[k, :, :, 0], cmap='gray', vmin=0, vmax=255)
      ax.set_xticks([])
      ax.set_yticks([])
      if k == 0 and kind == 'truth':
        ax.axis('off')
        ax.text(0.5, 0.5, 'truth', ha='center', va='center', fontsize=8, transform=ax.transAxes)
      if r == 0:
        ax.set_title('input' if k == 0 else emotions.EMOTIONS[k - 1], fontsize=8)
  title = 'expression GAN' + (f', step {step}' if step is not None else '')
  if truth is not None:
    title += '\nrows: a held-out face translated to each target, then the same photo with that expression'
  fig.suptitle(title, fontsize=9)
  fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()) if truth is not None else (0, 0, 1, 1))
  io_utils.save_figure(fig, os.path.join(workdir, 'samples', 'expressions.png'), dpi=100)
  plt.close(fig)
  if writer is not None and step is not None:
    h, w = grid.shape[2:4]
    tiled = grid.transpose(0, 2, 1, 3, 4).reshape(n * h, (c + 1) * w, 1)
    writer.write_images(step, {'expressions': tiled[None]})


# ------------------------------------------------------------------------------------------ evaluate


# Width of the judge and identity CNNs: 16 keeps both under a minute on 2 CPU cores at 32x32.
EVAL_WIDTH = 16


def evaluate(config, workdir, g_params, pool):
  """Judged target accuracy, identity kept and cycle L1 on the held-out subjects' faces; with a procedural
  pool, the translations' error against the ground truth (`fer_jax.eval.ground_truth`)."""

  e = config.expression_gan
  c = len(emotions.EMOTIONS)
  tr, ho = pool.train_idx, pool.holdout_idx
  t0 = time.time()
  judge = pool_judge.train_cnn(
    pool.images[tr], pool.labels[tr], c, steps=e.judge_steps, seed=config.seed, width=EVAL_WIDTH
  )
  t_judge = time.time() - t0
  pool_judge.save(
    judge,
    os.path.join(workdir, 'judge'),
    steps=int(e.judge_steps),
    seed=int(config.seed),
    width=EVAL_WIDTH,
    subjects="the GAN's training subjects of the pool",
  )
  t0 = time.time()
  ident, n_ident = identity_net.train(
    pool.images[tr], pool.subjects[tr], steps=e.identity_steps, seed=config.seed + 1, width=EVAL_WIDTH
  )
  t_ident = time.time() - t0

  faces, org, subj = pool.images[ho], pool.labels[ho], pool.subjects[ho]
  n = len(faces)
  src = np.repeat(np.arange(n), c)  # translated face j comes from held-out face src[j]
  trg = np.tile(np.arange(c), n)
  fake, masks = translate_all(config, g_params, faces[src], trg)
  rec, _ = translate_all(config, g_params, fake, org[src])
  cycle_l1 = float(np.abs(pixels.to_unit(rec) - pixels.to_unit(faces[src])).mean())

  real_logits, _ = pool_judge.predict(judge, faces, c, width=EVAL_WIDTH)
  fake_logits, _ = pool_judge.predict(judge, fake, c, width=EVAL_WIDTH)
  pred = fake_logits.argmax(1)
  changed = trg != org[src]
  per_target = {emotions.EMOTIONS[k]: float(np.mean(pred[trg == k] == k)) for k in range(c)}

  gallery = identity_net.embed(ident, n_ident, faces, width=EVAL_WIDTH)
  query = identity_net.embed(ident, n_ident, fake, width=EVAL_WIDTH)
  nn_subj = identity_net.nearest_subject(query, gallery, subj)
  nn_subj_strict = identity_net.nearest_subject(query, gallery, subj, exclude=src)
  real_loo = identity_net.nearest_subject(gallery, gallery, subj, exclude=np.arange(n))
  # Identity of the unchanged input under the same instrument: how well held-out identities separate.
  metrics = {
    'judged_target_accuracy': float(np.mean(pred == trg)),
    'judged_target_accuracy_changed': float(np.mean(pred[changed] == trg[changed])),
    'judged_target_accuracy_per_target': per_target,
    'judge_real_holdout_accuracy': float(np.mean(real_logits.argmax(1) == org)),
    'identity_kept': float(np.mean(nn_subj == subj[src])),
    'identity_kept_excluding_source_image': float(np.mean(nn_subj_strict == subj[src])),
    'identity_real_leave_one_out': float(np.mean(real_loo == subj)),
    'cycle_l1': cycle_l1,
    'cycle_l1_unit': cycle_l1 / 2.0,
    'num_holdout_subjects': int(len(np.unique(subj))),
    'num_holdout_faces': int(n),
    'num_translated': int(len(fake)),
    'num_train_subjects': int(n_ident),
    'num_train_faces': int(len(tr)),
    'judge': 'SmallCNN (fer_jax.eval.pool_judge) trained on real pool faces of the training subjects',
    'identity_space': 'L2-normalised penultimate features of SmallCNN trained to classify the training '
    'subjects (fer_jax.eval.identity_net); gallery = all real faces of the held-out '
    'subjects; cosine nearest neighbour',
    'judge_seconds': t_judge,
    'identity_net_seconds': t_ident,
  }
  if masks is not None:
    metrics['mask_mean'] = float(masks.mean())
  metrics['ground_truth'] = ground_truth.evaluate(
    config,
    np.unique(subj),
    lambda images, targets: translate_all(config, g_params, images, targets)[0],
    judge=lambda images: pool_judge.predict(judge, images, c, width=EVAL_WIDTH)[0],
  )
  return metrics


@workdirs.stage(*CONFIG_KEYS)
def train_and_evaluate(config, workdir):
  """Trains (resuming if checkpoints exist), writes samples/expressions.png and metrics.json."""

  os.makedirs(workdir, exist_ok=True)
  done = workdirs.finished(workdir, {'step': config.expression_gan.steps})
  if done is not None:
    logging.info('expression GAN: %s is complete; not redoing it', workdir)
    return done
  pool = load_pool(config, workdir)
  t0 = time.time()
  state, scalars = train(config, workdir, pool)
  train_seconds = time.time() - t0
  g_ema = parallel.to_host(state.g_ema)
  faces, truth = sample_faces(config, pool)
  step = int(parallel.to_host(state.step))
  write_samples(config, workdir, g_ema, faces, step=step, truth=truth)
  metrics = evaluate(config, workdir, g_ema, pool)
  metrics.update(
    step=step,
    train_seconds_this_run=train_seconds,
    params=layers.count_params(state.g_params) + layers.count_params(state.d_params),
    final_train_scalars=scalars,
  )
  io_utils.write_json(os.path.join(workdir, workdirs.METRICS), metrics)
  logging.info(
    'expression GAN metrics: judged target accuracy %.3f, identity kept %.3f, cycle L1 %.4f',
    metrics['judged_target_accuracy'],
    metrics['identity_kept'],
    metrics['cycle_l1'],
  )
  return metrics
