"""Orbax checkpoints behind the three calls every trainer needs: latest_step, save, restore.

A checkpoint holds a pytree (the train state, restored onto the template's shardings) and a small JSON
dict (epoch counters, best metric, provenance). Saves are synchronous and orbax finalises each step
directory by a rename, so a process killed at any moment leaves either the previous checkpoint or the new
one, never half of one; leftover temp folders are removed when the manager opens.
"""

import contextlib
import logging
import os
import shutil

from absl import logging as absl_logging
from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp

from fer_jax.infra.errors import UserError

_from_orbax = lambda record: '/orbax/' in record.pathname.replace(os.sep, '/')
# Orbax narrates every save at INFO; keep its warnings and errors, drop the rest from our logs.
absl_logging.get_absl_logger().addFilter(lambda r: r.levelno >= logging.WARNING or not _from_orbax(r))


@contextlib.contextmanager
def _orbax_silenced():
  """Drops everything orbax logs (errors and tracebacks included) while it opens a checkpoint folder or a fall-back
  restore tries a step: an unreadable step is reported in one line of ours (`restore`), and the one before it used."""
  logger = absl_logging.get_absl_logger()
  quiet = lambda record: not _from_orbax(record)
  logger.addFilter(quiet)
  try:
    yield
  finally:
    logger.removeFilter(quiet)


def _why(e):
  """One line saying why a step cannot be read: the innermost cause, without orbax's dump of the TensorStore spec."""
  while e.__cause__ is not None:
    e = e.__cause__
  text = str(e).split('. See full TensorStore details', 1)[0].strip()
  return f'{type(e).__name__}: {text.splitlines()[0][:200] if text else ""}'


class Checkpointer:
  """Keeps the newest `max_to_keep` checkpoints of one training stage in `directory` (two: one to fall back
  on when the newest cannot be read)."""

  def __init__(self, directory, max_to_keep=2):
    self.directory = epath.Path(os.path.abspath(os.fspath(directory)))
    with _orbax_silenced():  # it reads each step's metadata and logs (not raises) what it cannot parse: restore says
      self._mngr = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
          max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False, cleanup_tmp_directories=True
        ),
      )

  def latest_step(self):
    return self._mngr.latest_step()

  def all_steps(self):
    return list(self._mngr.all_steps())

  def save(self, step, state, meta=None):
    if jax.process_count() > 1:  # orbax refuses arrays on one process's devices only (e.g. an eval net's)
      state = jax.tree.map(
        lambda x: np.asarray(x) if isinstance(x, jax.Array) and len(x.sharding.device_set) < jax.device_count() else x,
        state,
      )
    self._mngr.save(
      step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta or {})), force=True
    )
    self._mngr.wait_until_finished()

  def restore(self, template, step=None, fallback=False):
    """Returns (state, meta) of `step` (default: the newest); `template` gives structure and shardings.

    fallback=True (a trainer resuming): when the newest cannot be read (a disk fault, a truncated copy) one
    line says so, it is renamed aside (`STEP.unreadable`) and the one before it is used: why two are kept.
    """
    steps = [step] if step is not None else sorted(self.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f'no checkpoint in {self.directory}')
    if not fallback:
      return self._restore(template, steps[0])
    errors = []
    for s in steps:
      try:
        with _orbax_silenced():
          out = self._restore(template, s)
      except Exception as e:  # pylint: disable=broad-except  # orbax/tensorstore raise many kinds
        errors.append(f'step {s}: {_why(e)}')
        continue
      for bad, why in zip(steps, errors):
        absl_logging.warning(
          'checkpoint step %d in %s cannot be restored (%s); moved it to %d.unreadable and resumed from step %d',
          bad,
          self.directory,
          why,
          bad,
          s,
        )
        aside = self.directory / f'{bad}.unreadable'
        if aside.exists():  # from an earlier fall-back: keep the newest unreadable copy only
          shutil.rmtree(aside)
        os.replace(self.directory / str(bad), aside)
      if errors:
        with _orbax_silenced():
          self._mngr.reload()
      return out
    raise UserError(
      f'no checkpoint in {self.directory} can be restored ({"; ".join(errors)}); delete that '
      'folder to start this stage over'
    )

  def _restore(self, template, step):
    out = self._mngr.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore())
    )
    return out.state, dict(out.meta)

  def restore_meta(self, step=None):
    step = self.latest_step() if step is None else step
    out = self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return dict(out.meta)

  def close(self):
    self._mngr.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
