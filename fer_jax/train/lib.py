"""What the trainers share: resuming from a checkpoint, when to act in a loop, the one metric reduction, the EMA of
parameters and the one divergence check."""

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.infra import parallel
from fer_jax.infra.errors import TrainingDiverged


def every(step, n, last=None):
  """True on every n-th step, and on `last` (big_vision's `itstime`): when a loop logs, saves or samples."""
  return step % int(n) == 0 or step == last


def interval_means(pending):
  """The one metric reduction of every trainer: the mean of each metric over the steps of a logging interval.

  `pending` is the list of per-step metric dicts (device arrays) gathered since the last log; they are stacked on
  the device and fetched in one host sync. Returns (name -> float mean, name -> numpy array of per-step values),
  the second for the divergence check, which names any step's NaN even when the mean would hide it."""
  if not pending:
    return {}, {}
  per_step = parallel.to_host(jax.tree.map(lambda *x: jnp.stack(x), *pending))
  return {k: float(np.mean(v)) for k, v in per_step.items()}, per_step


def ema(average, params, decay):
  """decay * average + (1 - decay) * params, leaf by leaf (both GANs' EMA generator)."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, average, params)


def check_finite(values, ckpt, describe, unit='step', hint=''):
  """Raises the one divergence error (`errors.TrainingDiverged`, one line) when any of `values` (name -> host
  array or number) is NaN or inf. Training stops before saving, so the checkpoint named in the message (`ckpt`'s
  latest) is the last good one. `describe(bad_names)` says what diverged and when, in the trainer's words."""
  bad = sorted(k for k, v in values.items() if not np.all(np.isfinite(np.asarray(v, dtype=np.float64))))
  if not bad:
    return
  kept = ckpt.latest_step()
  kept_text = (
    f'the last good checkpoint ({unit} {kept}) is kept in {ckpt.directory}'
    if kept is not None
    else ('before any checkpoint')
  )
  raise TrainingDiverged(f'{describe(bad)}; stopped, {kept_text}.' + (f' {hint}' if hint else ''))


def resume(ckpt, template, what, unit='step'):
  """(state, meta) of `ckpt`'s newest readable checkpoint, shaped like `template` (a newest one that cannot be
  read is set aside and the one before it used), with one log line saying where `what` resumed; (None, None)
  when there is no checkpoint, and the caller starts from its initial state."""
  if ckpt.latest_step() is None:
    return None, None
  state, meta = ckpt.restore(template, fallback=True)
  logging.info('%s: resumed at %s %d', what, unit, ckpt.latest_step())
  return state, meta
