"""A checkpoint that cannot be read is one warning line of ours, nothing of orbax's internals, and the one before it
is used (fer_jax.infra.checkpointing)."""

import logging
import os

import jax
import jax.numpy as jnp
import pytest

from fer_jax.infra.checkpointing import MANIFEST, Checkpointer
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


def _many_arrays(offset):
  return {f'w{i}': jnp.arange(256.0).reshape(16, 16) * (i + 1) + offset for i in range(60)}


@pytest.mark.parametrize('damage', ['truncated', 'overwritten'])
def test_a_damaged_data_file_is_refused_before_it_is_read(tmp_path, caplog, capfd, damage):
  """tensorstore reads a truncated data file whose index survived as wrong values without complaint, and a failed
  read leaves tracebacks from its threads: the step's manifest (sizes and CRC32s) refuses it before orbax opens it."""
  with Checkpointer(tmp_path) as ckpt:
    ckpt.save(1, _many_arrays(0.0), {'step': 1})
    ckpt.save(2, _many_arrays(1.0), {'step': 2})
  data = [
    os.path.join(r, f)
    for r, _, fs in os.walk(tmp_path / '2' / 'state')
    for f in fs
    if f'{os.sep}d{os.sep}' in r + os.sep
  ]
  victim = max(data, key=os.path.getsize)
  size = os.path.getsize(victim)
  with open(victim, 'r+b') as f:
    if damage == 'truncated':
      f.truncate(size // 2)
    else:
      f.seek(size // 3)
      f.write(b'\0' * 64)
  assert os.path.getsize(victim) == (size // 2 if damage == 'truncated' else size)
  with caplog.at_level(logging.DEBUG), Checkpointer(tmp_path) as ckpt:
    state, meta = ckpt.restore(jax.tree.map(jnp.zeros_like, _many_arrays(0.0)), fallback=True)
  assert meta == {'step': 1}
  assert all(bool((state[k] == v).all()) for k, v in _many_arrays(0.0).items())
  shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert len(shown) == 1 and os.path.relpath(victim, tmp_path / '2') in shown[0], shown
  assert ('bytes where' if damage == 'truncated' else 'CRC32') in shown[0]
  out, err = capfd.readouterr()
  assert 'Traceback' not in out + err and 'Exception ignored' not in out + err


def test_a_damaged_step_asked_for_by_number_is_one_clear_error(tmp_path):
  _two_steps(tmp_path)
  os.remove(next(os.path.join(r, f) for r, _, fs in os.walk(tmp_path / '2' / 'state') for f in fs))
  with (
    Checkpointer(tmp_path) as ckpt,
    pytest.raises(UserError, match=r'checkpoint step 2 in .* cannot be restored: .* is missing'),
  ):
    ckpt.restore({'w': jnp.zeros(8)}, step=2)


def test_a_step_without_a_manifest_is_read_by_orbax_alone(tmp_path):
  """Killed between orbax's rename and the manifest, or saved before manifests existed: still restored."""
  _two_steps(tmp_path)
  os.remove(tmp_path / '2' / MANIFEST)
  with Checkpointer(tmp_path) as ckpt:
    state, meta = ckpt.restore({'w': jnp.zeros(8)}, fallback=True)
  assert meta == {'step': 2} and float(state['w'][0]) == 1.0
