"""The pool's evaluation instruments: trained once per pool and settings, then read from the cache."""

import os

import numpy as np

from fer_jax.data import pool as pool_lib
from fer_jax.eval import instruments, small_cnn


def _count_training(monkeypatch):
  calls = []
  train = small_cnn.train_cnn

  def counted(*args, **kwargs):
    calls.append(kwargs.get('desc', 'judge'))
    return train(*args, **kwargs)

  monkeypatch.setattr(small_cnn, 'train_cnn', counted)
  return calls


def test_each_instrument_is_trained_once_per_pool_and_settings(tiny, tmp_path, monkeypatch):
  calls = _count_training(monkeypatch)
  tiny.eval.judge_steps, tiny.eval.identity_steps = 23, 24  # settings no other test uses: nothing cached yet
  workdir = str(tmp_path)
  pool = pool_lib.load_pool(tiny, workdir)
  judge = instruments.expression(tiny, workdir, pool)
  ident = instruments.identity(tiny, workdir, pool)
  assert calls == ['judge', 'identity']
  faces = pool.images[pool.holdout_idx]
  again_judge, again_ident = instruments.expression(tiny, workdir), instruments.identity(tiny, workdir)  # pool reloaded
  assert calls == ['judge', 'identity'] and again_judge.fingerprint == judge.fingerprint
  np.testing.assert_array_equal(again_judge.logits(faces), judge.logits(faces))
  np.testing.assert_array_equal(again_ident.features(faces), ident.features(faces))
  assert ident.features(faces).shape == (len(faces), tiny.eval.identity_embed_dim)
  assert ident.info['subjects'] == pool.describe()['train_subjects']
  # Other settings or another split are another instrument, kept next to the first.
  tiny.eval.judge_steps += 1
  assert instruments.expression(tiny, workdir, pool).fingerprint != judge.fingerprint
  tiny.seed += 1
  instruments.identity(tiny, workdir)
  assert calls == ['judge', 'identity', 'judge', 'identity']
  home = os.path.join(tiny.data.data_dir, 'instruments')
  for kind, fp in (('judge', judge.fingerprint), ('identity', ident.info['fingerprint'])):
    assert os.path.isdir(os.path.join(home, f'{kind}-{fp}'))
