"""Expression GAN trainer: StarGAN (optionally GANimation's attention and AU conditioning) on the GAN pool.

`train_and_evaluate(config, workdir)` trains on the GAN pool's training subjects (`fer_jax.data.pool`), then
evaluates on the held-out subjects' faces (with a procedural pool, also against ground truth:
`fer_jax.eval.ground_truth`) and writes WORKDIR/metrics.json and WORKDIR/samples/expressions.png.

Training follows StarGAN: every step is one critic update (WGAN loss + class loss on real faces + gradient
penalty); every `n_critic`-th step is followed by one generator update (adversarial + target class +
lambda_rec * cycle L1) on the same batch and targets. With `condition='aus'` (GANimation) G is told a vector
of action-unit intensities instead of a class: the targets are the AUs of other real faces of the batch, the
critic's head regresses AUs (squared error) where it would classify, and everything else is the same. Its
evaluation tells G the AUs of a real training face of each target emotion (`generators.conditions`, what the
synthetic set does), and the ground truth's own AUs when scoring against the ground truth.

Adam (betas from the config) for both, the learning rate decaying linearly to 0 over the second half. G and
D have separate optax states; the EMA of G's params is updated inside the jitted generator step and is what
`translate` uses. With `cls_augment` the critic's class head reads real faces (learning) and generated ones
(scoring the generator) through the same random shift/blur/noise (`fer_jax.infra.augment`), so a target class cannot
be passed with a few isolated pixels.

Resumability: the state (incl. step and PRNG key) is checkpointed; per-step randomness is
fold_in(key, step); the data order is a function of (seed, epoch), and a resumed run starts at the batch
where the checkpoint stopped, so kill + rerun gives the same final state as an uninterrupted run.

The synthetic stage loads and runs the trained generator through `fer_jax.train.generators`
(`load_expression`, `make_translate_fn`, `translate_all`).
"""

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
from fer_jax.eval import ground_truth, identity_net, instruments
from fer_jax.infra import augment, grids, io_utils, parallel, pixels, workdirs, writers
from fer_jax.infra.checkpointing import Checkpointer
from fer_jax.infra.errors import UserError
from fer_jax.models import layers, stargan
from fer_jax.train import generators, lib, losses

# The config keys this stage's results depend on: its workdir records them (`workdirs`).
CONFIG_KEYS = ('seed', 'data.pool_sources', 'data.pool_holdout_fraction', *workdirs.DATA_KEYS, 'expression_gan', 'eval')

# What G is asked to draw: 'emotion' (StarGAN: one of the 7 classes, one-hot; the critic's head classifies)
# or 'aus' (GANimation: a vector of action-unit intensities; the critic's head regresses them). 'aus' needs
# a pool whose records carry them (the procedural sources).
CONDITIONS = ('emotion', 'aus')
AU_SOURCES = frozenset({'procedural'})  # source kinds whose records carry action units

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
  condition: str
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
  if e.condition not in CONDITIONS:
    raise UserError(f'expression_gan.condition={e.condition!r}; expected one of {", ".join(CONDITIONS)}')
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
    stargan.condition_dim(e.condition, e.num_classes),
    int(e.conv_dim),
    int(e.repeat_num),
    int(e.d_repeat_num),
    bool(e.attention),
    str(e.condition),
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
  return stargan.make(
    hp.image_size, hp.conv_dim, hp.c_dim, hp.repeat_num, hp.d_repeat_num, hp.attention, hp.conv_impl, hp.dtype
  )


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

  by_aus = hp.condition == 'aus'

  def iteration_inputs(state, batch, critic_step):
    """(x, org, trg, alpha, k): org and trg are the source and target conditions, class indices (emotion)
    or action-unit vectors (aus)."""
    x = pixels.to_unit(batch['image'])
    # One c_trg per iteration (StarGAN): the critic and the generator step on the same targets.
    k = jax.random.fold_in(state.key, critic_step)
    if by_aus:
      # GANimation: the targets are the AUs of other faces of the batch (real AU combinations).
      org = batch['aus']
      trg = org[jax.random.permutation(jax.random.fold_in(k, 0), org.shape[0])]
    else:
      org = batch['label']
      trg = jax.random.randint(jax.random.fold_in(k, 0), org.shape, 0, c_dim)
    alpha = jax.random.uniform(jax.random.fold_in(k, 1), (x.shape[0], 1, 1, 1))
    return x, org, trg, alpha, k

  def told(c):
    """G's condition input [N, c_dim]: the one-hot class, or the AUs themselves."""
    return c if by_aus else jax.nn.one_hot(c, c_dim)

  def condition_loss(head, c):
    """The critic head's loss against condition c: cross-entropy (emotion), squared error summed over the
    AUs (aus, GANimation's regression), mean over faces."""
    if by_aus:
      return jnp.sum(jnp.square(head - c), -1).mean()
    return optax.softmax_cross_entropy_with_integer_labels(head, c).mean()

  def condition_metrics(head, c, name):
    if by_aus:  # mean absolute AU error
      return {name + '_au_mae': jnp.abs(head - c).mean()}
    return {name + '_acc': jnp.mean(jnp.argmax(head, -1) == c)}

  def classify(dp, images, key):
    """The critic's class logits; with cls_augment, of shifted, blurred, noisy images (`fer_jax.infra.augment`)."""
    return d_model.apply(dp, augment.shift_noise(key, images, blur=True))[1]

  def critic_update(state, x, org, fake, alpha, k):
    def loss_fn(dp):
      src_real, cls_real = d_model.apply(dp, x)
      if hp.cls_augment:
        cls_real = classify(dp, x, jax.random.fold_in(k, 2))
      src_fake, _ = d_model.apply(dp, fake)
      gp = losses.gradient_penalty(lambda xh: d_model.apply(dp, xh)[0], x, fake, alpha)
      cls = condition_loss(cls_real, org)
      adv = src_fake.mean() - src_real.mean()
      loss = adv + hp.lambda_cls * cls + hp.lambda_gp * gp
      return loss, dict(
        d_loss=loss,
        d_adv=adv,
        d_cls=cls,
        gp=gp,
        wasserstein=src_real.mean() - src_fake.mean(),
        **condition_metrics(cls_real, org, 'd_real'),
      )

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
    updates, d_opt = d_tx.update(grads, state.d_opt, state.d_params)
    d_params = optax.apply_updates(state.d_params, updates)
    return state.replace(step=state.step + 1, d_params=d_params, d_opt=d_opt), metrics

  def d_step(state, batch):
    x, org, trg, alpha, k = iteration_inputs(state, batch, state.step)
    fake = g_model.apply(state.g_params, x, told(trg))
    return critic_update(state, x, org, fake, alpha, k)

  def generator_losses(gp_, d_params, x, org, trg, fake, mask, k):
    """The generator's loss given its first pass (fake, mask) = G(x, c_trg); gp_ enters via the others."""
    src, cls = d_model.apply(d_params, fake)
    if hp.cls_augment:
      cls = classify(d_params, fake, jax.random.fold_in(k, 3))
    rec, rmask = g_model.apply(gp_, fake, told(org), return_mask=True)
    adv = -src.mean()
    cls_loss = condition_loss(cls, trg)
    rec_loss = jnp.abs(x - rec).mean()
    loss = adv + hp.lambda_cls * cls_loss + hp.lambda_rec * rec_loss
    metrics = dict(g_adv=adv, g_cls=cls_loss, g_rec=rec_loss, **condition_metrics(cls, trg, 'g_trg'))
    if hp.lambda_id:
      # Identity mapping (CycleGAN's L_idt): asked for its own class, G returns the input. The cycle
      # alone also accepts global changes that undo themselves (e.g. inverted brightness) as identity.
      same = g_model.apply(gp_, x, told(org))
      id_loss = jnp.abs(x - same).mean()
      loss = loss + hp.lambda_id * id_loss
      metrics['g_id'] = id_loss
    if hp.attention:
      # GANimation: L1 keeps the mask from saturating at 1 (copy the input, a trivial cycle), TV keeps
      # it smooth.
      tv = losses.total_variation(mask) + losses.total_variation(rmask)
      reg = hp.lambda_mask * (mask.mean() + rmask.mean()) + hp.lambda_tv * tv
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
    (fake, mask), first_vjp = jax.vjp(lambda gp_: g_model.apply(gp_, x, told(trg), return_mask=True), state.g_params)
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
      fake, mask = g_model.apply(gp_, x, told(trg), return_mask=True)
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


# --------------------------------------------------------------------------------------------- train


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
  # Checked here, before any stage runs (the sweep checks every stage's config first), not when the pool loads.
  other = {s.kind for s in sources.parse_sources(config.data.pool_sources, 'data.pool_sources')} - AU_SOURCES
  if hp.condition == 'aus' and other:
    raise UserError(
      f"expression_gan.condition='aus' needs action units in the GAN pool's records; data.pool_sources="
      f'{config.data.pool_sources!r} has {", ".join(sorted(other))} faces without them (only '
      f'{", ".join(sorted(AU_SOURCES))} sources record AUs): use --config.expression_gan.condition=emotion'
    )
  return hp


def train(config, workdir, pool=None):
  """Trains (or resumes) the GAN; returns (state, last logged scalars)."""

  hp = check_config(config)
  e = config.expression_gan
  bs = int(e.batch_size)
  pool = pool if pool is not None else pool_lib.load_pool(config, workdir)
  progs = programs(hp)
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'))
  state, meta = lib.resume(ckpt, state_template(config), 'expression GAN')
  if state is None:
    state, meta = progs.init(int(config.seed)), {}
  last_scalars = meta.get('scalars', {})
  start = int(parallel.to_host(state.step))
  writer = writers.create_writer(os.path.join(workdir, 'tensorboard'))
  if start >= hp.steps:
    ckpt.close()
    return state, last_scalars
  stream = pool_lib.batches(
    pool.train_dataset(with_aus=hp.condition == 'aus'), bs, config.seed, start, 'expression_gan.batch_size'
  )
  samples = sample_faces(config, pool)
  d_metrics = g_metrics = None
  t0, timed_from = time.time(), start
  bar = tqdm(total=hp.steps, initial=start, desc='expression GAN', unit='step', dynamic_ncols=True, disable=None)
  try:
    for step in range(start, hp.steps):
      batch = next(stream)
      batch = parallel.shard_batch({k: batch[k] for k in ('image', 'label', 'aus') if k in batch})
      if (step + 1) % hp.n_critic == 0:
        state, (d_metrics, g_metrics) = progs.dg_step(state, batch)
      else:
        state, d_metrics = progs.d_step(state, batch)
      done = step + 1
      bar.update(1)
      is_last = done == hp.steps
      at_ckpt = lib.every(done, e.checkpoint_every, hp.steps)
      if lib.every(done, e.log_every) or at_ckpt:
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
        bar.set_postfix(
          {
            k: f'{scalars[k]:.3g}'
            for k in ('d_loss', 'g_rec', 'g_trg_acc', 'g_trg_au_mae', 'mask_mean')
            if k in scalars
          }
        )
        if at_ckpt:
          ckpt.save(done, state, {'step': done, 'scalars': last_scalars})
      if lib.every(done, e.sample_every) and not is_last:  # the final grid is train_and_evaluate's
        write_samples(config, workdir, state.g_ema, samples, writer, done)
  finally:
    bar.close()
    writer.flush()
    ckpt.close()
  return state, last_scalars


# ------------------------------------------------------------------------------------------- samples


class Samples(NamedTuple):
  """The grid's fixed held-out faces [n,H,W,1], their ground truth for every target ([n,7,H,W,1] or None
  without a procedural pool) and what G is told for each target ([n*7] labels or [n*7, NUM_AUS] AUs: the
  truth's own AUs when there is a truth, so that the two rows show the same expression)."""

  faces: np.ndarray
  truth: np.ndarray | None
  told: np.ndarray


def sample_faces(config, pool):
  """Fixed held-out faces for the grid: the first record of each of the first `sample_faces` subjects."""
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
  truth, truth_aus = ground_truth.truth_for(config, images, pool.subjects[chosen])
  targets = np.tile(np.arange(len(emotions.EMOTIONS)), len(chosen))
  if config.expression_gan.condition == 'aus' and truth_aus is not None:
    told = truth_aus.reshape(len(targets), -1)
  else:
    told = generators.conditions(config, pool, targets, np.arange(len(targets)), config.seed)
  return Samples(images, truth, told)


def write_samples(config, workdir, g_params, samples, writer=None, step=None):
  """WORKDIR/samples/expressions.png: rows = held-out faces (`sample_faces`); input, then the 7 targets. With a
  ground truth, each face's row is followed by its ground truth for every target."""
  faces, truth = samples.faces, samples.truth
  n, c = len(faces), len(emotions.EMOTIONS)
  out, _ = generators.translate_all(config, g_params, np.repeat(faces, c, 0), samples.told)
  grid = np.concatenate([faces[:, None], out.reshape(n, c, *out.shape[1:])], axis=1)  # [n, 1+c, H, W, 1]
  rows, names = [list(grid[r]) for r in range(n)], [''] * n
  title = 'expression GAN' + (f', step {step}' if step is not None else '')
  if truth is not None:
    rows = [row for r in range(n) for row in (list(grid[r]), [None, *truth[r]])]
    names = ['', 'truth'] * n
    title += '\nrows: a held-out face translated to each target, then the same photo with that expression'
  grids.save_grid(
    rows,
    os.path.join(workdir, 'samples', 'expressions.png'),
    col_titles=['input', *emotions.EMOTIONS],
    row_titles=names,
    title=title,
  )
  if writer is not None and step is not None:
    h, w = grid.shape[2:4]
    tiled = grid.transpose(0, 2, 1, 3, 4).reshape(n * h, (c + 1) * w, 1)
    writer.write_images(step, {'expressions': tiled[None]})


# ------------------------------------------------------------------------------------------ evaluate


def evaluate(config, workdir, g_params, pool):
  """Judged target accuracy, identity kept and cycle L1 on the held-out subjects' faces; with a procedural
  pool, the translations' error against the ground truth (`fer_jax.eval.ground_truth`). The judge and the
  identity net are the pool's instruments (`fer_jax.eval.instruments`), shared with the identity GAN."""

  c = len(emotions.EMOTIONS)
  tr, ho = pool.train_idx, pool.holdout_idx
  t0 = time.time()
  judge = instruments.expression(config, workdir, pool)
  ident = instruments.identity(config, workdir, pool)
  t_instruments = time.time() - t0

  faces, org, subj = pool.images[ho], pool.labels[ho], pool.subjects[ho]
  n = len(faces)
  src = np.repeat(np.arange(n), c)  # translated face j comes from held-out face src[j]
  trg = np.tile(np.arange(c), n)
  by_aus = config.expression_gan.condition == 'aus'
  told = generators.conditions(config, pool, trg, np.arange(len(trg)), config.seed)
  fake, masks = generators.translate_all(config, g_params, faces[src], told)
  rec, _ = generators.translate_all(config, g_params, fake, pool.aus[ho][src] if by_aus else org[src])
  cycle_l1 = float(np.abs(pixels.to_unit(rec) - pixels.to_unit(faces[src])).mean())

  pred = judge.predict(fake)
  changed = trg != org[src]
  per_target = {emotions.EMOTIONS[k]: float(np.mean(pred[trg == k] == k)) for k in range(c)}

  gallery, query = ident.embed(faces), ident.embed(fake)
  nn_subj = identity_net.nearest_subject(query, gallery, subj)
  nn_subj_strict = identity_net.nearest_subject(query, gallery, subj, exclude=src)
  real_loo = identity_net.nearest_subject(gallery, gallery, subj, exclude=np.arange(n))
  # Identity of the unchanged input under the same instrument: how well held-out identities separate.
  metrics = {
    'judged_target_accuracy': float(np.mean(pred == trg)),
    'judged_target_accuracy_changed': float(np.mean(pred[changed] == trg[changed])),
    'judged_target_accuracy_per_target': per_target,
    'judge_real_holdout_accuracy': float(np.mean(judge.predict(faces) == org)),
    'identity_kept': float(np.mean(nn_subj == subj[src])),
    'identity_kept_excluding_source_image': float(np.mean(nn_subj_strict == subj[src])),
    'identity_real_leave_one_out': float(np.mean(real_loo == subj)),
    'cycle_l1': cycle_l1,
    'cycle_l1_unit': cycle_l1 / 2.0,
    'num_holdout_subjects': int(len(np.unique(subj))),
    'num_holdout_faces': int(n),
    'num_translated': int(len(fake)),
    'num_train_subjects': int(ident.num_subjects),
    'num_train_faces': int(len(tr)),
    'judge': 'the pool judge (fer_jax.eval.instruments): SmallCNN trained on real pool faces of the training '
    f'subjects; fingerprint {judge.fingerprint}',
    'identity_space': "L2-normalised penultimate features of the pool's identity net (fer_jax.eval.instruments: "
    'SmallCNN trained to classify the training subjects); gallery = all real faces of the held-out subjects; '
    'cosine nearest neighbour',
    'identity_net': ident.info,
    'instrument_seconds': t_instruments,
  }
  if masks is not None:
    metrics['mask_mean'] = float(masks.mean())
  metrics['ground_truth'] = ground_truth.evaluate(
    config,
    np.unique(subj),
    lambda p: generators.translate_all(config, g_params, p['inputs'], p['truth_aus'] if by_aus else p['target'])[0],
    judge=judge.logits,
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
  pool = pool_lib.load_pool(config, workdir)
  t0 = time.time()
  state, scalars = train(config, workdir, pool)
  train_seconds = time.time() - t0
  g_ema = parallel.to_host(state.g_ema)
  step = int(parallel.to_host(state.step))
  write_samples(config, workdir, g_ema, sample_faces(config, pool), step=step)
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
