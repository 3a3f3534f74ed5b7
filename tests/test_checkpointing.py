"""A checkpoint that cannot be read is one warning line of ours, nothing of orbax's internals, and the one before it
is used (fer_jax.infra.checkpointing)."""

import logging
import os

import jax.numpy as jnp
import pytest

from fer_jax.infra.checkpointing import Checkpointer
from fer_jax.infra.errors import UserError


def _empty_files(folder):
  for root, _, files in os.walk(folder):
    for f in files:
      open(os.path.join(root, f), 'w').close()


def _two_steps(directory):
  with Checkpointer(directory) as ckpt:
    ckpt.save(1, {'w': jnp.arange(8.0)}, {'step': 1})
    ckpt.save(2, {'w': jnp.arange(8.0) + 1}, {'step': 2})


def test_an_unreadable_step_is_one_warning_line_and_the_previous_is_used(tmp_path, caplog, capfd):
  _two_steps(tmp_path)
  _empty_files(tmp_path / '2')
  with caplog.at_level(logging.DEBUG), Checkpointer(tmp_path) as ckpt:
    state, meta = ckpt.restore({'w': jnp.zeros(8)}, fallback=True)
  assert meta == {'step': 1} and float(state['w'][1]) == 1.0
  assert (tmp_path / '2.unreadable').is_dir() and not (tmp_path / '2').exists()
  shown = [r for r in caplog.records if r.levelno >= logging.WARNING]
  assert len(shown) == 1, [r.getMessage() for r in shown]
  assert f'checkpoint step 2 in {tmp_path} cannot be restored' in shown[0].getMessage()
  assert 'resumed from step 1' in shown[0].getMessage()
  assert not [r for r in caplog.records if '/orbax/' in r.pathname]
  out, err = capfd.readouterr()
  assert 'Traceback' not in out + err


def test_orbax_is_heard_again_after_the_fallback(tmp_path):
  """The silence covers opening and the fall-back attempts only: the filter is off the logger afterwards."""
  logger = logging.getLogger('absl')
  before = list(logger.filters)
  _two_steps(tmp_path)
  _empty_files(tmp_path / '2')
  with Checkpointer(tmp_path) as ckpt:
    ckpt.restore({'w': jnp.zeros(8)}, fallback=True)
    assert logger.filters == before
  assert logger.filters == before


def test_no_readable_step_is_one_clear_error(tmp_path):
  _two_steps(tmp_path)
  _empty_files(tmp_path)
  with Checkpointer(tmp_path) as ckpt, pytest.raises(UserError, match=r'no checkpoint in .* can be restored'):
    ckpt.restore({'w': jnp.zeros(8)}, fallback=True)
