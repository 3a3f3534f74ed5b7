"""Orbax checkpoints behind the three calls every trainer needs: latest_step, save, restore.

A checkpoint holds a pytree (the train state, restored onto the template's shardings) and a small JSON
dict (epoch counters, best metric, provenance). Saves are synchronous and orbax finalises each step
directory by a rename, so a process killed at any moment leaves either the previous checkpoint or the new
one, never half of one; leftover temp folders are removed when the manager opens.
"""
import os

import logging

import orbax.checkpoint as ocp
from absl import logging as absl_logging
from etils import epath

# Orbax narrates every save at INFO; keep its warnings and errors, drop the rest from our logs.
absl_logging.get_absl_logger().addFilter(
    lambda r: r.levelno >= logging.WARNING or "/orbax/" not in r.pathname)


class Checkpointer:
  """Keeps the newest `max_to_keep` checkpoints of one training stage in `directory`."""

  def __init__(self, directory, max_to_keep=1):
    self.directory = epath.Path(os.path.abspath(os.fspath(directory)))
    self._mngr = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False,
            cleanup_tmp_directories=True))

  def latest_step(self):
    return self._mngr.latest_step()

  def all_steps(self):
    return list(self._mngr.all_steps())

  def save(self, step, state, meta=None):
    self._mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                  meta=ocp.args.JsonSave(meta or {})), force=True)
    self._mngr.wait_until_finished()

  def restore(self, template, step=None):
    """Returns (state, meta) of `step` (default: the latest); `template` gives structure and shardings."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'no checkpoint in {self.directory}')
    out = self._mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(template),
                                                           meta=ocp.args.JsonRestore()))
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
