"""Trains and tests the paper's CNN: the measuring instrument of the study.

`train_and_evaluate(config, workdir)` runs one classifier run: the training set is a mixture of sources
(real train split, optionally k x synthetic), early stopping watches the validation loss of the real
sources, the best parameters are kept and tested on every test source. Rerunning the same command in the
same workdir resumes after the last finished epoch, or only rewrites the results when training is done.

Sections (the shape of the three trainers): settings check -> hyper-parameters -> state and steps -> data ->
`train` (the epoch loop) -> `evaluate` (the test sets) -> `train_and_evaluate` (one run, metrics.json).
"""

import dataclasses
import functools
import math
import os
import time
from typing import Callable, NamedTuple

from flax.training import train_state
import jax
import jax.numpy as jnp
from matplotlib.figure import Figure
import numpy as np
import optax
from tqdm.auto import tqdm

from fer_jax.data import emotions, pipeline, sources
from fer_jax.eval import metrics as metrics_lib
from fer_jax.infra import io_utils, parallel, profiling, workdirs, writers
from fer_jax.infra.checkpointing import Checkpointer
from fer_jax.infra.errors import UserError
from fer_jax.models import layers
from fer_jax.models.classifier import PaperCNN
from fer_jax.train import lib

# The config keys this stage's results depend on: its workdir records them (`workdirs`).
CONFIG_KEYS = ('seed', 'data.train_sources', 'data.test_sources', *workdirs.DATA_KEYS, 'classifier')

REGIMES = ('real', 'synthetic', 'mixed')
MIXES = ('concat', 'batch_fraction', 'weighted')  # classifier.mix: how a mixed run meets its synthetic images


# ------------------------------------------------------------------------------------- settings check
def _number(c, key, low, integer=False, strict=True):
  v = c[key]
  kind = int if integer else (int, float)
  ok = not isinstance(v, bool) and isinstance(v, kind) and np.isfinite(v) and (v > low if strict else v >= low)
  if not ok:
    raise UserError(
      f'classifier.{key}={v!r}; expected a{" whole" if integer else ""} number {">" if strict else ">="} {low:g}'
    )


def check_config(config):
  """Every setting of the `classifier` section a run uses, before anything is read or written."""
  c = config.classifier
  if c.conv_impl not in layers.CONV_IMPLS:
    raise UserError(
      f'classifier.conv_impl={c.conv_impl!r}; expected one of {", ".join(layers.CONV_IMPLS)} (xla for GPU/TPU)'
    )
  if c.dtype not in ('float32', 'bfloat16'):
    raise UserError(f'classifier.dtype={c.dtype!r}; expected float32 or bfloat16')
  _number(c, 'lr', 0)
  for key in ('num_epochs', 'patience'):
    _number(c, key, 0, integer=True)
  for key in ('max_steps', 'min_steps'):
    _number(c, key, 0, integer=True, strict=False)
  _number(c, 'checkpoint_every_seconds', 0, strict=False)
  _number(c, 'num_classes', 1, integer=True)
  if isinstance(c.real_fraction, bool) or not isinstance(c.real_fraction, (int, float)) or not 0 < c.real_fraction <= 1:
    raise UserError(
      f'classifier.real_fraction={c.real_fraction!r} must be in (0, 1] (the share of the real train split)'
    )
  if c.mix not in MIXES:
    raise UserError(f'classifier.mix={c.mix!r}; expected one of {", ".join(MIXES)}')
  fraction = c.synthetic_fraction
  if c.mix == 'batch_fraction' and not (
    isinstance(fraction, (int, float)) and 0 < round(fraction * c.batch_size) < c.batch_size
  ):
    raise UserError(
      f'classifier.synthetic_fraction={c.synthetic_fraction!r}; expected a fraction in (0, 1) that leaves real '
      f'and synthetic rows in a batch of {c.batch_size} (classifier.mix = batch_fraction)'
    )
  weight = c.synthetic_weight
  if c.mix == 'weighted' and not (
    isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight) and weight > 0
  ):
    raise UserError(
      f'classifier.synthetic_weight={weight!r}; expected a number > 0, the weight of a synthetic row in the loss '
      '(classifier.mix = weighted)'
    )
  devices = parallel.make_mesh().size
  for key in ('batch_size', 'eval_batch_size'):
    _number(c, key, 0, integer=True)
    if c[key] % devices:
      raise UserError(
        f'classifier.{key}={c[key]} is not a multiple of the {devices} devices; use e.g. '
        f'{max(devices, c[key] - c[key] % devices)}'
      )


# ----------------------------------------------------------------------------------- hyper-parameters
@dataclasses.dataclass(frozen=True, kw_only=True)
class Hparams:
  """What the compiled programs depend on: one set of programs per distinct value (`compiled`)."""

  num_classes: int
  image_size: int
  lr: float
  dtype: str = 'float32'  # compute dtype; parameters stay float32
  conv_impl: str = 'xla'  # layers.CONV_IMPLS


def hparams(config) -> Hparams:
  c = config.classifier
  return Hparams(
    num_classes=int(c.num_classes),
    image_size=int(config.data.image_size),
    lr=float(c.lr),
    dtype=str(c.dtype),
    conv_impl=str(c.conv_impl),
  )


# ------------------------------------------------------------------------------------ state and steps
def model(hp):
  return PaperCNN(num_classes=hp.num_classes, dtype=jnp.dtype(hp.dtype), conv_impl=hp.conv_impl)


def preprocess(images):
  """uint8 images -> float32, each image standardised to zero mean and unit variance.

  Raw x/255 in [0, 1] (mean 0.55, std 0.18 on the procedural faces) leaves every unit's response ~80% a
  shared brightness offset: the untrained CNN's logits barely depend on the image, the first Adam steps shrink
  them towards uniform and the run sits on the loss-ln(6) plateau for 30-80 steps (4-8 epochs of the quick
  real set), for some seeds longer than a 120-step cap (such a run ended predicting one class).
  Standardised inputs leave it within ~10-20 steps (measured at the quick preset).
  """
  x = images.astype(jnp.float32) / 255.0
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  std = x.std(axis=(1, 2, 3), keepdims=True)
  return (x - mean) / jnp.maximum(std, 1.0 / 255.0)  # a flat image maps to zeros


def init_state(key, *, hp, cnn):
  """flax's TrainState (params, Adam state, step) of a freshly initialised CNN."""
  params = cnn.init(key, jnp.zeros((1, hp.image_size, hp.image_size, 1), jnp.float32))['params']
  return train_state.TrainState.create(apply_fn=cnn.apply, params=params, tx=optax.adam(hp.lr))


def train_step(state, batch, key, *, cnn):
  """One Adam step on the cross-entropy; dropout from fold_in(key, step). Returns (state, per-step metrics)."""

  def loss_fn(params):
    logits = cnn.apply({'params': params}, preprocess(batch['image']), train=True, rngs={'dropout': rng})
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch['label'])
    if 'weight' in batch:  # classifier.mix = 'weighted': a real row weighs 1, a synthetic one synthetic_weight
      loss = loss * batch['weight']
    return loss.mean(), logits

  rng = jax.random.fold_in(key, state.step)
  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads)
  return state, {'loss': loss, 'accuracy': (logits.argmax(-1) == batch['label']).mean()}


def _logits(params, batch, cnn):
  return cnn.apply({'params': params}, preprocess(batch['image']), train=False)


def eval_step(params, batch, *, cnn):
  """Sums over the real rows of a padded evaluation batch (`mask`): exact means over a whole set."""
  logits = _logits(params, batch, cnn)
  mask = batch['mask']
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch['label'])
  return {
    'loss_sum': jnp.where(mask, loss, 0.0).sum(),
    'correct': jnp.where(mask, logits.argmax(-1) == batch['label'], False).sum(),
    'count': mask.sum(),
  }


def predict_step(params, batch, *, cnn):
  return {'pred': _logits(params, batch, cnn).argmax(-1), 'label': batch['label'], 'mask': batch['mask']}


class Steps(NamedTuple):
  """The jitted programs of one `Hparams`."""

  init: Callable  # key -> TrainState
  train: Callable  # (state, batch, dropout key) -> (state, {'loss', 'accuracy'}); donates the state
  eval: Callable  # (params, padded batch) -> {'loss_sum', 'correct', 'count'}
  predict: Callable  # (params, padded batch) -> {'pred', 'label', 'mask'}


@functools.lru_cache(maxsize=None)
def compiled(hp: Hparams) -> Steps:
  """One set of jitted steps per `Hparams`, reused by every run in the process (a sweep compiles once)."""
  cnn = model(hp)
  return Steps(
    init=parallel.jit(functools.partial(init_state, hp=hp, cnn=cnn), out_shardings=parallel.replicated()),
    train=parallel.data_parallel(
      functools.partial(train_step, cnn=cnn), batch_argnums=(1,), donate_argnums=(0,), num_args=3
    ),
    eval=parallel.data_parallel(functools.partial(eval_step, cnn=cnn), batch_argnums=(1,), num_args=2),
    # Replicated outputs: in a multi-host job every process sees every prediction with its label.
    predict=parallel.data_parallel(functools.partial(predict_step, cnn=cnn), batch_argnums=(1,), num_args=2),
  )


# ---------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class Datasets:
  train: pipeline.Arrays  # read and decoded once (`pipeline.in_memory`): the epochs cut their batches from it
  validation: object
  tests: dict  # source name -> MapDataset
  n_real: int
  n_synthetic: int
  parts: tuple = ()  # (real, synthetic) Arrays of a mixed run, for classifier.mix = 'batch_fraction'


def _check_multiple(regime, multiple):
  if regime not in REGIMES:
    raise UserError(f'classifier.regime={regime!r} is unknown; expected one of {", ".join(REGIMES)}')
  try:
    multiple = float(multiple)
  except (TypeError, ValueError):
    raise UserError(f'classifier.multiple={multiple!r} is not a number') from None
  if not np.isfinite(multiple) or multiple < 0:
    raise UserError(f'classifier.multiple={multiple} must be a finite number >= 0')
  if regime == 'real' and multiple != 0:
    raise UserError(f"regime 'real' uses no synthetic data; got classifier.multiple={multiple:g} (use 0)")
  if regime != 'real' and multiple == 0:
    raise UserError(f'regime {regime!r} needs classifier.multiple > 0 (k x the real set size)')
  return multiple


def _check_labels(ds, name, num_classes, require_all):
  labels = pipeline.labels_of(ds)
  bad = labels[(labels < 0) | (labels >= num_classes)]
  if bad.size:
    raise UserError(
      f'{name}: label {emotions.EMOTIONS[bad[0]] if bad[0] < len(emotions.EMOTIONS) else bad[0]!r}'
      f" is outside the classifier's {num_classes} classes ({', '.join(emotions.EKMAN[:num_classes])})"
    )
  if require_all:
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if missing:
      raise UserError(
        f'{name}: class {", ".join(emotions.EMOTIONS[m] for m in missing)} has no examples; '
        f'every one of the {num_classes} classes must be present'
      )
  return labels


def build_datasets(config, workdir):
  """Resolves the run's sources into grain datasets and checks them before any training."""
  c = config.classifier
  multiple = _check_multiple(c.regime, c.multiple)
  train_sources = sources.parse_sources(config.data.train_sources, 'data.train_sources')
  test_sources = sources.parse_sources(config.data.test_sources, 'data.test_sources')

  real_parts, val_parts = [], []
  for src in train_sources:
    split = sources.load(src, 'train', config, workdir)
    count = int(round(len(split) * c.real_fraction))
    real_parts.append(pipeline.examples(split, count, name=f'{src} train'))
    val_parts.append(pipeline.examples(sources.load(src, 'validation', config, workdir), name=f'{src} validation'))
  n_real = sum(len(p) for p in real_parts)  # the base of k x; a synthetic-only run trains on none of it
  if n_real == 0:
    raise UserError(f'data.train_sources={config.data.train_sources!r}: the real training split is empty')

  n_synthetic, parts, synthetic_parts = 0, list(real_parts) if c.regime != 'synthetic' else [], []
  if c.regime != 'real':
    if not c.synthetic_source:
      raise UserError(
        f'regime {c.regime!r} needs classifier.synthetic_source (a synthetic set, '
        'e.g. synthetic:WORKDIR/synthetic) to draw k x the real set size from'
      )
    n_synthetic = int(round(multiple * n_real))  # k x the real set size, whatever the regime
    for src in sources.parse_sources(c.synthetic_source, 'classifier.synthetic_source'):
      synthetic_parts.append(pipeline.examples(sources.load(src, 'train', config, workdir), n_synthetic, name=str(src)))
  train = pipeline.in_memory(pipeline.mixture(parts + synthetic_parts))
  if c.regime == 'mixed' and c.mix == 'weighted':  # the concat set, its synthetic rows (the last) weighted
    n_real_rows = len(train) - sum(len(p) for p in synthetic_parts)
    weight = np.full(len(train), float(c.synthetic_weight), np.float32)
    weight[:n_real_rows] = 1.0
    train = pipeline.Arrays(train.image, train.label, weight)
  by_fraction = c.regime == 'mixed' and c.mix == 'batch_fraction'
  split = (pipeline.mixture(real_parts), pipeline.mixture(synthetic_parts)) if by_fraction else ()
  split = tuple(map(pipeline.in_memory, split))
  validation = pipeline.mixture(val_parts)
  _check_labels(train, 'training data', c.num_classes, require_all=True)
  _check_labels(validation, 'validation data', c.num_classes, require_all=False)
  tests = {}
  for src in test_sources:
    ds = pipeline.examples(sources.load(src, 'test', config, workdir), name=f'{src} test')
    if len(ds) == 0:
      raise UserError(f'test source {src}: the test split is empty')
    _check_labels(ds, f'test source {src}', c.num_classes, require_all=False)
    tests[str(src)] = ds
  return Datasets(train, validation, tests, n_real if c.regime != 'synthetic' else 0, n_synthetic, split)


def device_batches(ds, batch_size):
  """A whole (small) evaluation set as padded batches on the devices: read once per run, not every epoch."""
  return [parallel.shard_batch(b) for b in pipeline.eval_batches(ds, batch_size)]


def train_batch_size(config, n_train):
  """classifier.batch_size; a training set smaller than a batch trains on what it has (the largest multiple of
  the device count). metrics.json records the batch size used."""
  devices = parallel.make_mesh().size
  batch_size = min(config.classifier.batch_size, n_train - n_train % devices)
  if batch_size <= 0:
    raise UserError(f'the training set holds {n_train} examples, fewer than the {devices} devices')
  return batch_size


def epoch_batches(config, data, batch_size, epoch):
  """One epoch's training batches (host numpy), from (seed, epoch) alone: a resumed run replays them exactly."""
  c = config.classifier
  if data.parts:  # classifier.mix = 'batch_fraction': a share of every batch is synthetic
    return pipeline.fraction_batches(*data.parts, c.synthetic_fraction, batch_size, config.seed, epoch)
  return pipeline.train_batches(data.train, batch_size, config.seed, epoch)


# ------------------------------------------------------------------------------------------ training
def protocol(c):
  """'early_stopping' (the paper's: up to num_epochs, stop on validation loss) or 'equal_steps' (a step cap)."""
  return 'equal_steps' if c.max_steps > 0 else 'early_stopping'


class Stopped(Exception):
  """A run asked to stop (`stop` set) saved its progress after an epoch; rerunning resumes it."""


def validate(eval_step_fn, params, batches):
  """Mean loss and accuracy over `device_batches` (exact sums, one host sync at the end)."""
  totals = None
  for batch in batches:
    out = eval_step_fn(params, batch)
    totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
  totals = parallel.to_host(totals)
  n = max(int(totals['count']), 1)
  return {'loss': float(totals['loss_sum']) / n, 'accuracy': float(totals['correct']) / n}


def _stop_reason(c, meta, steps_done):
  """Why training ends after this epoch (None: it goes on)."""
  if meta['bad_epochs'] >= c.patience and steps_done >= c.min_steps:
    return 'early_stopping'
  if c.max_steps > 0 and steps_done >= c.max_steps:
    return 'step_cap'
  if meta['epoch'] >= c.num_epochs:
    return 'epoch_cap'  # still improving when the epochs ran out: the report counts these
  return None


def train(config, workdir, data, batch_size, stop=None, profile=None):
  """The epoch loop with early stopping on the validation loss; resumes from WORKDIR/checkpoints.

  Returns (the last train state, the best epoch's parameters, meta: epochs, best epoch, stop reason, history).
  `stop`, a `threading.Event`, is how a sweep running several runs at once ends the others when one fails or
  the user interrupts: the run checkpoints after its current epoch and raises `Stopped`. `profile`
  (`profiling.Profile`) receives the loop's seconds: compile, input, steps, validation, checkpoints, logging.
  """
  c = config.classifier
  profile = profile or profiling.Profile()
  steps = compiled(hparams(config))
  init_key, dropout_key = jax.random.split(jax.random.key(config.seed))
  with profile.part('compile'):  # the run's first init compiles it (when this process has not yet)
    state = steps.init(init_key)
  # The best epoch's parameters live outside the donated train state, as their own copy.
  best_params = jax.tree.map(jnp.copy, state.params)
  meta = {
    'epoch': 0,
    'best_val_loss': float('inf'),
    'best_epoch': 0,
    'bad_epochs': 0,
    'done': False,
    'train_seconds': 0.0,
    'history': [],
  }
  with Checkpointer(os.path.join(workdir, 'checkpoints')) as ckpt:
    template = {'state': state, 'best_params': best_params}
    with profile.part('checkpoints'):
      restored, saved_meta = lib.resume(ckpt, template, f'classifier {workdir}', 'epoch')
    if restored is not None:
      state, best_params, meta = restored['state'], restored['best_params'], saved_meta
    first_epoch = meta['epoch']

    last_save = time.perf_counter()
    val_batches = device_batches(data.validation, c.eval_batch_size)
    writer = writers.create_writer(os.path.join(workdir, 'tensorboard'))
    bar = tqdm(
      total=c.num_epochs,
      initial=meta['epoch'],
      desc=f'classifier {c.regime} k={c.multiple:g}',
      unit='epoch',
      leave=False,
      disable=jax.process_index() > 0,
    )
    try:
      while not meta['done']:
        epoch = meta['epoch']
        start = time.perf_counter()
        pending = []
        for batch in profile.timed('input', map(parallel.shard_batch, epoch_batches(config, data, batch_size, epoch))):
          # The run's first step compiles the step when this process has not run its shape yet.
          with profile.part('steps' if pending or epoch > first_epoch else 'compile'):
            state, metrics = steps.train(state, batch, dropout_key)
          pending.append(metrics)
        with profile.part('steps'):
          means, per_step = lib.interval_means(pending)  # the epoch's one host sync
        lib.check_finite(
          per_step,
          ckpt,
          lambda bad, loss=means['loss'], epoch=epoch: f'classifier training loss is {loss} at epoch {epoch + 1}',
          unit='epoch',
          hint='Try a lower classifier.lr.',
        )
        with profile.part('validation'):
          val = validate(steps.eval, state.params, val_batches)
        epoch += 1
        record = {
          'epoch': epoch,
          'train_loss': means['loss'],
          'train_accuracy': means['accuracy'],
          'val_loss': val['loss'],
          'val_accuracy': val['accuracy'],
        }
        if val['loss'] < meta['best_val_loss']:
          best_params = jax.tree.map(jnp.copy, state.params)
          meta.update(best_val_loss=val['loss'], best_val_accuracy=val['accuracy'], best_epoch=epoch, bad_epochs=0)
        else:
          meta['bad_epochs'] += 1
        meta['history'].append(record)
        meta['epoch'] = epoch
        meta['train_seconds'] += time.perf_counter() - start
        reason = _stop_reason(c, meta, int(jax.device_get(state.step)))
        if reason:
          meta['stop_reason'] = reason
        meta['done'] = 'stop_reason' in meta
        # Saving costs ~0.1-0.3 s, as much as a short epoch: save on a time interval and at the end. A killed run
        # replays the epochs since its last save exactly (batches from (seed, epoch), dropout from the step).
        stopping = stop is not None and stop.is_set() and not meta['done']
        if meta['done'] or stopping or time.perf_counter() - last_save >= c.checkpoint_every_seconds:
          with profile.part('checkpoints'):
            ckpt.save(epoch, {'state': state, 'best_params': best_params}, meta)
          last_save = time.perf_counter()
        with profile.part('logging'):
          writer.write_scalars(epoch, {k: v for k, v in record.items() if k != 'epoch'})
          bar.update(1)
          bar.set_postfix(val_loss=f'{val["loss"]:.3f}', val_acc=f'{val["accuracy"]:.3f}')
        if stopping:
          raise Stopped(f'{workdir}: stopped after epoch {epoch} (saved; rerunning resumes it)')
    finally:
      bar.close()  # also on an error: its message then starts on a line of its own
      writer.close()
  return state, best_params, meta


# ------------------------------------------------------------------------------------------- testing
def predict(predict_step_fn, params, ds, batch_size):
  """(labels, predictions) of every example of `ds` (in a multi-host job, of every process's rows)."""
  labels, preds = [], []
  for batch in pipeline.eval_batches(ds, batch_size):
    out = parallel.to_host(predict_step_fn(params, parallel.shard_batch(batch)))
    labels.append(out['label'][out['mask']])
    preds.append(out['pred'][out['mask']])
  return np.concatenate(labels), np.concatenate(preds)


def evaluate(config, params, tests):
  """`params` tested on every test source (name -> MapDataset): name -> accuracy, macro F1, confusion, ..."""
  c = config.classifier
  predict_step_fn = compiled(hparams(config)).predict
  names = list(emotions.EMOTIONS[: c.num_classes])
  results = {}
  for name, ds in tests.items():
    labels, preds = predict(predict_step_fn, params, ds, c.eval_batch_size)
    results[name] = metrics_lib.classification_metrics(labels, preds, c.num_classes, names)
  return results


def _plot_confusions(tests, names, path):
  # A bare Figure, not pyplot: pyplot's global figure registry is not thread-safe, and a sweep trains
  # several runs at once in threads.
  fig = Figure(figsize=(4.2 * len(tests), 4.2))
  axes = fig.subplots(1, len(tests), squeeze=False)
  for ax, (name, m) in zip(axes[0], tests.items()):
    metrics_lib.plot_confusion(ax, m['confusion'], names, f'{name}\nacc {m["accuracy"]:.3f}')
  fig.tight_layout()
  io_utils.save_figure(fig, path, dpi=100)


# -------------------------------------------------------------------------------------------- one run
@workdirs.stage(*CONFIG_KEYS)
def train_and_evaluate(config, workdir, stop=None):
  """One classifier run: trains (or resumes, `train`) in `workdir`, tests the best epoch's parameters on every
  test source (`evaluate`), writes metrics.json and confusion.png; returns metrics.json's record."""
  c = config.classifier
  check_config(config)
  profile = profiling.Profile()
  with profile.part('data'):
    data = build_datasets(config, workdir)
  batch_size = train_batch_size(config, len(data.train))
  state, best_params, meta = train(config, workdir, data, batch_size, stop, profile)
  with profile.part('test'):
    tests = evaluate(config, best_params, data.tests)
  first = tests[next(iter(tests))]  # the headline numbers: the first test source's
  predicted = np.asarray(first['confusion']).sum(0)
  result = {
    'protocol': protocol(c),
    'stop_reason': meta['stop_reason'],
    'test_max_pred_share': float(predicted.max() / max(predicted.sum(), 1)),
    'test_accuracy': first['accuracy'],
    'test_macro_f1': first['macro_f1'],
    'val_accuracy': meta.get('best_val_accuracy', 0.0),
    'val_loss': meta['best_val_loss'],
    'epochs': meta['epoch'],
    'best_epoch': meta['best_epoch'],
    'steps': int(jax.device_get(state.step)),
    'train_seconds': meta['train_seconds'],
    'regime': c.regime,
    'multiple': float(c.multiple),
    'seed': int(config.seed),
    'n_real': data.n_real,
    'n_synthetic': data.n_synthetic,
    'n_train': len(data.train),
    'mix': c.mix if data.parts or data.train.weight is not None else 'concat',
    **({'synthetic_weight': float(c.synthetic_weight)} if data.train.weight is not None else {}),
    'batch_size': batch_size,
    'lr': float(c.lr),
    'devices': parallel.make_mesh().size,
    'params': layers.count_params(state.params),
    'tests': tests,
    'history': meta['history'],
  }
  if jax.process_index() == 0:
    with profile.part('pictures'):
      _plot_confusions(tests, list(emotions.EMOTIONS[: c.num_classes]), os.path.join(workdir, 'confusion.png'))
    result['profile_seconds'] = profile.summary()  # this invocation's seconds (a resumed run's are of the resumed part)
    io_utils.write_json(os.path.join(workdir, workdirs.METRICS), result)
  return result
