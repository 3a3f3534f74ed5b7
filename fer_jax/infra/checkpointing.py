"""Orbax checkpoints behind the three calls every trainer needs: latest_step, save, restore.

A checkpoint holds a pytree (the train state, restored onto the template's shardings) and a small JSON
dict (epoch counters, best metric, provenance). Saves are synchronous and orbax finalises each step
directory by a rename, so a process killed at any moment leaves either the previous checkpoint or the new
one, never half of one; leftover temp folders are removed when the manager opens.

Each saved step also gets a manifest of its files (size and CRC32 of each), checked before orbax reads any of
them: tensorstore reads a damaged file either as garbage values without complaint (a truncated data file whose
index survives) or as a failed read whose abandoned siblings print tracebacks from its threads, so a step whose
files are not the ones saved is refused before it is opened.
"""

import contextlib
import json
import logging
import os
import shutil
import zlib

from absl import logging as absl_logging
from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp

from fer_jax.infra import io_utils
from fer_jax.infra.errors import UserError

MANIFEST = 'fer_jax_manifest.json'

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
  if isinstance(e, Damaged):
    return str(e)
  while e.__cause__ is not None:
    e = e.__cause__
  text = str(e).split('. See full TensorStore details', 1)[0].strip()
  return f'{type(e).__name__}: {text.splitlines()[0][:200] if text else ""}'


class Damaged(ValueError):
  """A step's files are not the ones that were saved (`_check_manifest`)."""


def _crc32(path):
  crc = 0
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 20):
      crc = zlib.crc32(chunk, crc)
  return crc


def _files(step_dir):
  for root, _, names in os.walk(step_dir):
    for name in names:
      if name != MANIFEST:
        yield os.path.relpath(os.path.join(root, name), step_dir)


def _write_manifest(step_dir):
  paths = {rel: os.path.join(step_dir, rel) for rel in sorted(_files(step_dir))}
  files = {rel: [os.path.getsize(p), _crc32(p)] for rel, p in paths.items()}
  io_utils.write_json(os.path.join(step_dir, MANIFEST), {'files': files})


def _check_manifest(step_dir):
  """Raises Damaged naming the first file that is not as saved. A step without a manifest (killed between
  orbax's rename and ours, or written by an older version) is left to orbax alone."""
  path = os.path.join(step_dir, MANIFEST)
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      files = json.load(f)['files']
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise Damaged(f'its manifest {MANIFEST} is unreadable ({type(e).__name__})') from None
  for rel, (size, crc) in files.items():
    p = os.path.join(step_dir, rel)
    if not os.path.exists(p):
      raise Damaged(f'{rel} is missing')
    if os.path.getsize(p) != size:
      raise Damaged(f'{rel} has {os.path.getsize(p)} bytes where {size} were saved')
    if _crc32(p) != crc:
      raise Damaged(f'{rel} has changed since it was saved (its CRC32 differs)')


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
    if jax.process_index() == 0:
      _write_manifest(self._step_dir(step))

  def restore(self, template, step=None, fallback=False):
    """Returns (state, meta) of `step` (default: the newest); `template` gives structure and shardings.

    fallback=True (a trainer resuming): when the newest cannot be read (a disk fault, a truncated copy) one
    line says so, it is renamed aside (`STEP.unreadable`) and the one before it is used: why two are kept.
    """
    steps = [step] if step is not None else sorted(self.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f'no checkpoint in {self.directory}')
    if not fallback:
      try:
        return self._restore(template, steps[0])
      except Damaged as e:
        raise UserError(f'checkpoint step {steps[0]} in {self.directory} cannot be restored: {e}') from None
    errors = []
    for s in steps:
      try:
        with _orbax_silenced():
          out = self._restore(template, s)
      except Exception as e:  # pylint: disable=broad-except  # orbax/tensorstore raise many kinds
        errors.append(_why(e))
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
    tried = '; '.join(f'step {s}: {why}' for s, why in zip(steps, errors))
    raise UserError(
      f'no checkpoint in {self.directory} can be restored ({tried}); delete that folder to start this stage over'
    )

  def _step_dir(self, step):
    return os.path.join(os.fspath(self.directory), str(step))

  def _restore(self, template, step):
    _check_manifest(self._step_dir(step))
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
