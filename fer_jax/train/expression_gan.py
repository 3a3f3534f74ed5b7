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
from fer_jax.eval import ground_truth, identity_net, instruments
from fer_jax.infra import augment, grids, io_utils, parallel, pixels, profiling, workdirs, writers
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

# ------------------------------------------------------------------------------------- hyper-parameters


@dataclasses.dataclass(frozen=True, kw_only=True)
class Hparams:
  """What the compiled programs depend on: `compiled(hp)` is shared by all runs with equal hparams."""

  image_size: int
  channels: int
  devices: int  # the mesh the programs are compiled for
  c_dim: int  # the width of G's condition input: 7 classes or NUM_AUS action units
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
  lambda_pair: float
  pair_pool: int
  pair_shift: int
  g_lr: float
  d_lr: float
  betas: tuple[float, float]
  steps: int
  n_critic: int
  ema_decay: float
  ema_warmup: bool
  conv_impl: str
  dtype: str


def hparams(config) -> Hparams:
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
  if not (isinstance(e.lambda_pair, (int, float)) and math.isfinite(e.lambda_pair) and e.lambda_pair >= 0):
    raise UserError(f'expression_gan.lambda_pair={e.lambda_pair!r}; expected a number >= 0 (0: no paired loss)')
  if isinstance(e.pair_pool, bool) or not isinstance(e.pair_pool, int) or e.pair_pool < 1:
    raise UserError(f'expression_gan.pair_pool={e.pair_pool!r}; expected a whole number >= 1 (1: full resolution)')
  if isinstance(e.pair_shift, bool) or not isinstance(e.pair_shift, int) or e.pair_shift < 0:
    raise UserError(f'expression_gan.pair_shift={e.pair_shift!r}; expected a whole number >= 0 (0: no alignment)')
  if e.condition not in CONDITIONS:
    raise UserError(f'expression_gan.condition={e.condition!r}; expected one of {", ".join(CONDITIONS)}')
  size = int(config.data.image_size)
  if size % e.pair_pool:
    raise UserError(f'expression_gan.pair_pool={e.pair_pool} does not divide data.image_size={size}')
  if 2 * e.pair_shift >= size // e.pair_pool:
    raise UserError(
      f'expression_gan.pair_shift={e.pair_shift} leaves nothing to compare at {size // e.pair_pool}x'
      f'{size // e.pair_pool} (data.image_size / expression_gan.pair_pool); expected less than half that'
    )
  if size % 4 or size // 2**e.d_repeat_num < 1:
    raise UserError(
      f'data.image_size={size} does not fit the GAN: it must be a multiple of 4 and at least '
      f'2**expression_gan.d_repeat_num={2**e.d_repeat_num}'
    )
  b1, b2 = e.betas
  return Hparams(
    image_size=size,
    channels=1,
    devices=jax.device_count(),
    c_dim=stargan.condition_dim(e.condition, e.num_classes),
    conv_dim=int(e.conv_dim),
    repeat_num=int(e.repeat_num),
    d_repeat_num=int(e.d_repeat_num),
    attention=bool(e.attention),
    condition=str(e.condition),
    cls_augment=bool(e.cls_augment),
    lambda_cls=float(e.lambda_cls),
    lambda_rec=float(e.lambda_rec),
    lambda_gp=float(e.lambda_gp),
    lambda_mask=float(e.lambda_mask),
    lambda_tv=float(e.lambda_tv),
    lambda_id=float(e.lambda_id),
    lambda_pair=float(e.lambda_pair),
    pair_pool=int(e.pair_pool),
    pair_shift=int(e.pair_shift),
    g_lr=float(e.g_lr),
    d_lr=float(e.d_lr),
    betas=(float(b1), float(b2)),
    steps=int(e.steps),
    n_critic=int(e.n_critic),
    ema_decay=float(e.ema_decay),
    ema_warmup=bool(e.ema_warmup),
    conv_impl=str(e.conv_impl),
    dtype=str(e.dtype),
  )


def models(hp):
  """(Generator, Discriminator) of `hp`."""
  return stargan.make(
    hp.image_size, hp.conv_dim, hp.c_dim, hp.repeat_num, hp.d_repeat_num, hp.attention, hp.conv_impl, hp.dtype
  )


def _schedule(lr, total):
  """Constant, then linear decay to 0 over the second half of `total` updates (StarGAN)."""
  half = total // 2
  return optax.join_schedules(
    [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, max(total - half, 1))], [half]
  )


def optimizers(hp):
  """Separate Adam for G (one update per n_critic steps) and D, each decaying over its own updates."""
  b1, b2 = hp.betas
  g_total = max(hp.steps // hp.n_critic, 1)
  g_tx = optax.adam(_schedule(hp.g_lr, g_total), b1=b1, b2=b2)
  d_tx = optax.adam(_schedule(hp.d_lr, hp.steps), b1=b1, b2=b2)
  return g_tx, d_tx


# ---------------------------------------------------------------------------------------------- state


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


def init(seed, *, hp):
  """The full train state: steps, key, G, D, G's EMA and the two Adam states."""
  g_model, d_model = models(hp)
  g_tx, d_tx = optimizers(hp)
  # Weights are drawn with the 'rbg' PRNG: XLA:CPU takes ~30 s to compile threefry for every weight
  # tensor of the init program, rbg a few. Per-step randomness stays threefry (`key`), whose values do
  # not depend on how the batch is sharded.
  init_key = jax.random.key(seed, impl='rbg')
  x = jnp.zeros((1, hp.image_size, hp.image_size, hp.channels), jnp.float32)
  g_params = g_model.init(jax.random.fold_in(init_key, 1), x, jnp.zeros((1, hp.c_dim)))
  d_params = d_model.init(jax.random.fold_in(init_key, 2), x)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    g_count=jnp.zeros((), jnp.int32),
    key=jax.random.fold_in(jax.random.PRNGKey(seed), 3),
    g_params=g_params,
    d_params=d_params,
    g_ema=g_params,
    g_opt=g_tx.init(g_params),
    d_opt=d_tx.init(d_params),
  )


# ------------------------------------------------------------------------------------------- losses


def _iteration_inputs(state, batch, critic_step, hp):
  """(x, org, trg, alpha, k, pair): org and trg are the source and target conditions, class indices (emotion)
  or action-unit vectors (aus); pair = (the partner faces in [-1, 1], which rows have one) with lambda_pair, else
  None."""
  x = pixels.to_unit(batch['image'])
  # One c_trg per iteration (StarGAN): the critic and the generator step on the same targets.
  k = jax.random.fold_in(state.key, critic_step)
  if hp.condition == 'aus':
    # GANimation: the targets are the AUs of other faces of the batch (real AU combinations).
    org = batch['aus']
    trg = org[jax.random.permutation(jax.random.fold_in(k, 0), org.shape[0])]
  else:
    org = batch['label']
    trg = jax.random.randint(jax.random.fold_in(k, 0), org.shape, 0, hp.c_dim)
  pair = None
  if hp.lambda_pair:  # a face with a partner (the same person, another expression) is asked for the partner's
    has = batch['has_pair']
    told = batch['pair_aus'] if hp.condition == 'aus' else batch['pair_label']
    trg = jnp.where(has.reshape(-1, *([1] * (trg.ndim - 1))) > 0, told, trg)
    pair = (pixels.to_unit(batch['pair_image']), has)
  alpha = jax.random.uniform(jax.random.fold_in(k, 1), (x.shape[0], 1, 1, 1))
  return x, org, trg, alpha, k, pair


def _told(c, hp):
  """G's condition input [N, c_dim]: the one-hot class, or the AUs themselves."""
  return c if hp.condition == 'aus' else jax.nn.one_hot(c, hp.c_dim)


def _condition_loss(head, c, hp):
  """The critic head's loss against condition c: cross-entropy (emotion), squared error summed over the
  AUs (aus, GANimation's regression), mean over faces."""
  if hp.condition == 'aus':
    return jnp.sum(jnp.square(head - c), -1).mean()
  return optax.softmax_cross_entropy_with_integer_labels(head, c).mean()


def _condition_metrics(head, c, name, hp):
  if hp.condition == 'aus':  # mean absolute AU error
    return {name + '_au_mae': jnp.abs(head - c).mean()}
  return {name + '_acc': jnp.mean(jnp.argmax(head, -1) == c)}


def _critic_head(d_model, d_params, images, key, hp):
  """The critic's condition head; with cls_augment, of shifted, blurred, noisy images (`fer_jax.infra.augment`),
  so that a target cannot be passed with a few isolated pixels."""
  if hp.cls_augment:
    images = augment.shift_noise(key, images, blur=True)
  return d_model.apply(d_params, images)[1]


def _coarse(images, factor):
  """Each image average-pooled by `factor` and standardised (zero mean, unit variance): what the paired loss
  compares. The partner is another photo of the person (its pose, light, contrast and sensor noise differ); at a
  coarse scale and without brightness or contrast, what remains is where the face's parts are: the expression."""
  n, h, w, c = images.shape
  p = images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
  mean = p.mean(axis=(1, 2, 3), keepdims=True)
  return (p - mean) / jnp.sqrt(jnp.square(p - mean).mean(axis=(1, 2, 3), keepdims=True) + 1e-6)


def pair_loss(fake, pair, factor, shift=0):
  """The paired translation loss: mean L1 between G's translation and the partner face (`_coarse`), over the
  rows that have a partner (0 when none has). With `shift` > 0 each row is compared at the best of the partner's
  (2 shift + 1)^2 offsets of up to `shift` coarse pixels, on the central crop both cover: the partner photo sits
  elsewhere in the frame, and an L1 against a misplaced face rewards a blur of the two placements."""
  partner, has = pair
  a, b = _coarse(fake, factor), _coarse(partner, factor)
  if shift:
    _, h, w, _ = a.shape
    centre = a[:, shift : h - shift, shift : w - shift]
    per_shift = [
      jnp.abs(centre - b[:, shift + dy : h - shift + dy, shift + dx : w - shift + dx]).mean(axis=(1, 2, 3))
      for dy in range(-shift, shift + 1)
      for dx in range(-shift, shift + 1)
    ]
    per_row = jnp.min(jnp.stack(per_shift), axis=0)
  else:
    per_row = jnp.abs(a - b).mean(axis=(1, 2, 3))
  return jnp.sum(per_row * has) / jnp.maximum(has.sum(), 1.0)


def _generator_losses(g_params, d_params, x, org, trg, fake, mask, k, hp, pair=None):
  """The generator's loss given its first pass (fake, mask) = G(x, c_trg); g_params enters via the others.
  `pair` (`_iteration_inputs`): the partner faces the paired loss aims the translations at."""
  g_model, d_model = models(hp)
  src, cls = d_model.apply(d_params, fake)
  if hp.cls_augment:
    cls = _critic_head(d_model, d_params, fake, jax.random.fold_in(k, 3), hp)
  rec, rmask = g_model.apply(g_params, fake, _told(org, hp), return_mask=True)
  adv = -src.mean()
  cls_loss = _condition_loss(cls, trg, hp)
  rec_loss = jnp.abs(x - rec).mean()
  loss = adv + hp.lambda_cls * cls_loss + hp.lambda_rec * rec_loss
  metrics = dict(g_adv=adv, g_cls=cls_loss, g_rec=rec_loss, **_condition_metrics(cls, trg, 'g_trg', hp))
  if hp.lambda_id:
    # Identity mapping (CycleGAN's L_idt): asked for its own class, G returns the input. The cycle
    # alone also accepts global changes that undo themselves (e.g. inverted brightness) as identity.
    same = g_model.apply(g_params, x, _told(org, hp))
    id_loss = jnp.abs(x - same).mean()
    loss = loss + hp.lambda_id * id_loss
    metrics['g_id'] = id_loss
  if hp.lambda_pair:
    paired = pair_loss(fake, pair, hp.pair_pool, hp.pair_shift)
    loss = loss + hp.lambda_pair * paired
    metrics['g_pair'] = paired
  if hp.attention:
    # GANimation: L1 keeps the mask from saturating at 1 (copy the input, a trivial cycle), TV keeps
    # it smooth.
    tv = losses.total_variation(mask) + losses.total_variation(rmask)
    reg = hp.lambda_mask * (mask.mean() + rmask.mean()) + hp.lambda_tv * tv
    loss = loss + reg
    metrics.update(mask_mean=mask.mean(), mask_reg=reg)
  metrics['g_loss'] = loss
  return loss, metrics


# --------------------------------------------------------------------------------------------- steps


def gradient_penalty(d_params, x, fake, alpha, hp):
  """WGAN-GP of the critic `d_params`, computed in float32 whatever hp.dtype.

  It differentiates the critic twice and drives its input-gradient norm to 1, where bfloat16's ~1% error on that
  norm is as large as |norm - 1|: in bfloat16 its parameter gradient came out 10-26% off (tiny .. paper shapes,
  CPU). The rest of the critic's loss runs in hp.dtype."""
  _, critic = models(dataclasses.replace(hp, dtype='float32'))
  return losses.gradient_penalty(lambda xh: critic.apply(d_params, xh)[0], x, fake, alpha)


def _critic_update(state, x, org, fake, alpha, k, hp):
  _, d_model = models(hp)
  _, d_tx = optimizers(hp)

  def loss_fn(d_params):
    src_real, cls_real = d_model.apply(d_params, x)
    if hp.cls_augment:
      cls_real = _critic_head(d_model, d_params, x, jax.random.fold_in(k, 2), hp)
    src_fake, _ = d_model.apply(d_params, fake)
    gp = gradient_penalty(d_params, x, fake, alpha, hp)
    cls = _condition_loss(cls_real, org, hp)
    adv = src_fake.mean() - src_real.mean()
    loss = adv + hp.lambda_cls * cls + hp.lambda_gp * gp
    return loss, dict(
      d_loss=loss,
      d_adv=adv,
      d_cls=cls,
      gp=gp,
      wasserstein=src_real.mean() - src_fake.mean(),
      **_condition_metrics(cls_real, org, 'd_real', hp),
    )

  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
  updates, d_opt = d_tx.update(grads, state.d_opt, state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)
  return state.replace(step=state.step + 1, d_params=d_params, d_opt=d_opt), metrics


def _generator_update(state, grads, hp):
  g_tx, _ = optimizers(hp)
  updates, g_opt = g_tx.update(grads, state.g_opt, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  n = state.g_count.astype(jnp.float32)
  decay = jnp.minimum(hp.ema_decay, (1.0 + n) / (10.0 + n)) if hp.ema_warmup else hp.ema_decay
  g_ema = lib.ema(state.g_ema, g_params, decay)
  return state.replace(g_count=state.g_count + 1, g_params=g_params, g_opt=g_opt, g_ema=g_ema)


def d_step(state, batch, *, hp):
  """One critic update (WGAN loss + condition loss on real faces + gradient penalty)."""
  g_model, _ = models(hp)
  x, org, trg, alpha, k, _ = _iteration_inputs(state, batch, state.step, hp)
  fake = g_model.apply(state.g_params, x, _told(trg, hp))
  return _critic_update(state, x, org, fake, alpha, k, hp)


def dg_step(state, batch, *, hp):
  """A critic update, then a generator update on the same batch and targets.

  The critic's fake and the generator's first pass are the same G(x, c_trg) on unchanged G weights, so
  it is computed once, with its VJP kept for the generator update (one G pass of ~7 saved). The
  generator's gradient is the sum of that pass's VJP and the direct gradient of the other passes.
  """
  g_model, _ = models(hp)
  x, org, trg, alpha, k, pair = _iteration_inputs(state, batch, state.step, hp)
  (fake, mask), first_vjp = jax.vjp(
    lambda g_params: g_model.apply(g_params, x, _told(trg, hp), return_mask=True), state.g_params
  )
  state, d_metrics = _critic_update(state, x, org, jax.lax.stop_gradient(fake), alpha, k, hp)
  (_, g_metrics), (g_direct, d_fake, d_mask) = jax.value_and_grad(_generator_losses, argnums=(0, 5, 6), has_aux=True)(
    state.g_params, state.d_params, x, org, trg, fake, mask, k, hp, pair
  )
  (g_first,) = first_vjp((d_fake, d_mask))
  return _generator_update(state, jax.tree.map(jnp.add, g_direct, g_first), hp), (d_metrics, g_metrics)


def g_step(state, batch, *, hp):
  """The generator update after a critic step on `batch`, written plainly (G(x, c_trg) recomputed inside
  the differentiated loss): the reference `dg_step` is tested against."""
  g_model, _ = models(hp)
  x, org, trg, _, k, pair = _iteration_inputs(state, batch, state.step - 1, hp)

  def loss_fn(g_params):
    fake, mask = g_model.apply(g_params, x, _told(trg, hp), return_mask=True)
    return _generator_losses(g_params, state.d_params, x, org, trg, fake, mask, k, hp, pair)

  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  return _generator_update(state, grads, hp), metrics


def all_finite(state):
  leaves = jax.tree.leaves((state.g_params, state.d_params, state.g_ema))
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


class Steps(NamedTuple):
  init: Any  # seed -> TrainState
  d: Any  # (state, batch) -> (state, critic metrics); donates the state
  dg: Any  # (state, batch) -> (state, (critic metrics, generator metrics)): what every n_critic-th step runs
  g: Any  # (state, batch) -> (state, generator metrics): the plain generator update `dg` is tested against
  all_finite: Any  # state -> bool scalar


@functools.lru_cache(maxsize=None)
def compiled(hp: Hparams) -> Steps:
  """The jitted programs of `hp` (over the mesh), compiled once per hparams."""
  jit = functools.partial(parallel.data_parallel, batch_argnums=(1,), donate_argnums=(0,), num_args=2)
  return Steps(
    init=parallel.data_parallel(functools.partial(init, hp=hp), batch_argnums=(), static_argnums=(0,), num_args=1),
    d=jit(functools.partial(d_step, hp=hp)),
    dg=jit(functools.partial(dg_step, hp=hp)),
    g=jit(functools.partial(g_step, hp=hp)),
    all_finite=parallel.data_parallel(all_finite, batch_argnums=()),
  )


# --------------------------------------------------------------------------------------------- train


def state_template(config):
  abstract = compiled(hparams(config)).init.eval_shape(int(config.seed))
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


# What a training batch holds on the devices: the pool's faces and conditions, and their partners (`pool.Pairs`).
BATCH_KEYS = ('image', 'label', 'aus', 'pair_image', 'pair_label', 'pair_aus', 'has_pair')


def train(config, workdir, pool=None, profile=None):
  """The loop on `pool`'s training faces, resuming from WORKDIR/checkpoints: a critic step every step, the
  generator's after every n_critic-th; logging (tensorboard, the means over each interval), checkpoints and the
  sample grid; `profile` (`profiling.Profile`) receives its seconds. Returns (state, the last interval's means)."""
  hp = check_config(config)
  e = config.expression_gan
  profile = profile or profiling.Profile()
  pool = pool if pool is not None else pool_lib.load_pool(config, workdir)
  steps = compiled(hp)
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'))
  with profile.part('checkpoints'):
    state, meta = lib.resume(ckpt, state_template(config), 'expression GAN')
  if state is None:
    with profile.part('compile'):
      state, meta = steps.init(int(config.seed)), {}
  last_scalars = meta.get('scalars', {})
  start = int(parallel.to_host(state.step))
  writer = writers.create_writer(os.path.join(workdir, 'tensorboard'))
  if start >= hp.steps:
    ckpt.close()
    return state, last_scalars
  stream = pool_lib.batches(
    pool.train_dataset(with_aus=hp.condition == 'aus'),
    int(e.batch_size),
    config.seed,
    start,
    'expression_gan.batch_size',
  )
  pairs = pool_lib.Pairs(pool, config.seed) if hp.lambda_pair else None
  if pairs is not None and pairs.share == 0:
    logging.warning(
      'expression GAN: no pool face has a partner (the same person in another expression); '
      'lambda_pair=%g weighs nothing: training is unpaired',
      hp.lambda_pair,
    )
  with profile.part('pictures'):
    samples = sample_faces(config, pool)
  pending_d, pending_g, first = [], [], start
  t0 = time.time()
  bar = tqdm(total=hp.steps, initial=start, desc='expression GAN', unit='step', dynamic_ncols=True, disable=None)
  try:
    for step in range(start, hp.steps):
      with profile.part('input'):
        batch = next(stream)
        if pairs is not None:
          batch.update(pairs.draw(batch['index'], step, int(e.batch_size), with_aus=hp.condition == 'aus'))
        batch = parallel.shard_batch({k: v for k, v in batch.items() if k in BATCH_KEYS})
      # A run's first d and dg steps compile them (when this process has not run their shapes yet).
      with profile.part('compile' if step < start + hp.n_critic else 'steps'):
        if (step + 1) % hp.n_critic == 0:
          state, (d_metrics, g_metrics) = steps.dg(state, batch)
          pending_g.append(g_metrics)
        else:
          state, d_metrics = steps.d(state, batch)
      pending_d.append(d_metrics)
      done = step + 1
      bar.update(1)
      at_ckpt = lib.every(done, e.checkpoint_every, hp.steps)
      if lib.every(done, e.log_every) or at_ckpt:
        with profile.part('steps'):  # the interval's one host sync: where its steps' compute is waited for
          means, per_step = lib.interval_means(pending_d)
          means_g, per_step_g = lib.interval_means(pending_g)  # G stepped on fewer steps: its own means
          per_step['parameters'] = 0.0 if bool(parallel.to_host(steps.all_finite(state))) else np.nan
        means.update(means_g)
        per_step.update(per_step_g)
        lib.check_finite(
          per_step,
          ckpt,
          lambda bad, first=first, done=done: (
            f'expression GAN diverged by step {done}: non-finite {", ".join(bad)} in steps {first + 1} to {done}'
          ),
          hint='Try a lower expression_gan.g_lr/d_lr.',
        )
        means['steps_per_s'] = len(pending_d) / max(time.time() - t0, 1e-9)
        writer.write_scalars(done, means)
        last_scalars = means
        shown = ('d_loss', 'g_rec', 'g_trg_acc', 'g_trg_au_mae', 'mask_mean')
        bar.set_postfix({k: f'{means[k]:.3g}' for k in shown if k in means})
        pending_d, pending_g, first, t0 = [], [], done, time.time()
        if at_ckpt:
          with profile.part('checkpoints'):
            ckpt.save(done, state, {'step': done, 'scalars': last_scalars})
      if lib.every(done, e.sample_every) and done != hp.steps:  # the final grid is train_and_evaluate's
        with profile.part('pictures'):
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
  profile = profiling.Profile()
  with profile.part('data'):
    pool = pool_lib.load_pool(config, workdir)
  state, scalars = train(config, workdir, pool, profile)
  g_ema = parallel.to_host(state.g_ema)
  step = int(parallel.to_host(state.step))
  with profile.part('pictures'):
    write_samples(config, workdir, g_ema, sample_faces(config, pool), step=step)
  with profile.part('evaluation'):
    metrics = evaluate(config, workdir, g_ema, pool)
  metrics.update(
    step=step,
    params=layers.count_params(state.g_params) + layers.count_params(state.d_params),
    final_train_scalars=scalars,
    profile_seconds=profile.summary(),  # this invocation's seconds (a resumed run's are of the resumed part)
  )
  io_utils.write_json(os.path.join(workdir, workdirs.METRICS), metrics)
  logging.info(
    'expression GAN metrics: judged target accuracy %.3f, identity kept %.3f, cycle L1 %.4f',
    metrics['judged_target_accuracy'],
    metrics['identity_kept'],
    metrics['cycle_l1'],
  )
  return metrics
