"""Curated synthetic sets (`synthetic.filter = 'judge'`): kept faces are the judge's reading of their label, and
the set stays balanced and nested; made from the finished tiny sweep's GANs."""

import os
import shutil

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from fer_jax import sweep, synthetic
from fer_jax.data import emotions
from fer_jax.eval import instruments, small_cnn
from fer_jax.infra.errors import UserError


def _make(tiny, finished, folder, n_images, expression_gan_dir=None, **synthetic_fields):
  config = sweep.gan_config(tiny, 0)
  config.data.data_dir = str(finished / 'tfds')
  config.synthetic.update(synthetic_fields)
  gans = finished / 'gan0'
  return synthetic.generate(
    config,
    str(folder),
    n_images=n_images,
    identity_gan_dir=str(gans / 'identity_gan'),
    expression_gan_dir=str(expression_gan_dir or gans / 'expression_gan'),
  )


def _read(folder):
  builder = tfds.builder_from_directory(folder)
  ds = builder.as_data_source('train')
  records = [ds[i] for i in range(len(ds))]
  images = np.stack([np.asarray(r['image']) for r in records])
  return images, np.array([int(r['label']) for r in records]), builder.info.metadata


def test_judge_filter_keeps_what_the_judge_reads_as_the_label_balanced_and_nested(
  tiny, finished, tmp_path, monkeypatch
):
  """The tiny GANs (4 steps) impose no readable expression and the tiny pool judge (20 steps) reads none, so the
  judge here is one that reads the tiny GANs' labels: trained on an unfiltered set of theirs, and put in the
  pool judge's place."""
  seen, seen_labels, _ = _read(_make(tiny, finished, tmp_path / 'seen', 600))
  judge = small_cnn.train_cnn(seen, seen_labels, len(emotions.EMOTIONS), steps=300, width=16, embed_dim=256)
  monkeypatch.setattr(
    instruments, 'expression', lambda config, workdir, pool=None: instruments.ExpressionNet(judge, 16, 'seen')
  )
  ex_dir = tmp_path / 'expression_gan'
  shutil.copytree(finished / 'gan0' / 'expression_gan', ex_dir)
  folder = _make(tiny, finished, tmp_path / 'big', 60, ex_dir, filter='judge', min_confidence=0.3)
  images, labels, meta = _read(folder)
  assert len(labels) == 60 and (labels.reshape(-1, 6) == np.arange(6)).all()  # balanced, label order per row
  logits, _ = small_cnn.predict(judge, images, len(emotions.EMOTIONS), width=16, embed_dim=256)
  p = np.asarray(jax.nn.softmax(logits, axis=1))
  assert (p.argmax(1) == labels).all() and (p[np.arange(len(labels)), labels] >= 0.3 - 1e-6).all()
  stats = meta['filter_stats']
  assert stats['filter'] == 'judge' and stats['used_per_emotion'] == 10 and stats['generated_per_kept'] > 1
  assert all(stats['generated_per_emotion'] >= v >= 10 for v in stats['kept_per_emotion'].values())
  # Nested: a smaller curated set is this set's first rows; the unfiltered set is another folder.
  small_images, small_labels, _ = _read(
    _make(tiny, finished, tmp_path / 'small', 24, ex_dir, filter='judge', min_confidence=0.3)
  )
  np.testing.assert_array_equal(small_images, images[:24])
  np.testing.assert_array_equal(small_labels, labels[:24])
  plain = _make(tiny, finished, tmp_path / 'big', 60, ex_dir)
  assert os.path.dirname(plain) != os.path.dirname(folder) and _read(plain)[2].get('filter') == 'none'


def test_a_filter_that_keeps_almost_nothing_stops_with_the_class_and_what_to_do(tiny, finished, tmp_path):
  with pytest.raises(UserError, match=r'lower synthetic.min_confidence'):
    _make(tiny, finished, tmp_path / 'strict', 60, filter='judge', min_confidence=0.999)
  assert not list((tmp_path / 'strict').rglob('dataset_info.json'))  # no set left behind
  tiny.synthetic.filter = 'best'
  with pytest.raises(UserError, match="synthetic.filter='best'; expected one of none, judge"):
    synthetic.check_config(tiny)


def test_real_identities_on_a_real_dataset_are_the_pools_neutral_faces(tiny):
  """Without a renderer (a real dataset) the expression GAN's real identities are the GAN pool's own neutral faces,
  training subjects first; asking for more than the pool has is one clear error."""
  from fer_jax.data import pool as pool_lib  # pylint: disable=import-outside-toplevel

  labels = np.array([emotions.NEUTRAL, 0, emotions.NEUTRAL, 3, emotions.NEUTRAL, emotions.NEUTRAL], np.int32)
  images = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
  pool = pool_lib.Pool(None, images, labels, np.arange(6), np.array([2, 3, 4, 5]), np.array([0, 1]))
  draw, provenance = synthetic._real_identities(tiny, pool, rendered=False)  # pylint: disable=protected-access
  assert provenance['count'] == 4
  assert [int(x[0, 0, 0]) for x in draw(0, 4)] == [2, 4, 5, 0]  # training subjects' neutral faces, then held-out
  assert [int(x[0, 0, 0]) for x in draw(1, 2)] == [4, 5]
  with pytest.raises(UserError, match='needs 5 neutral faces and the GAN pool .* has 4'):
    draw(2, 3)
  with pytest.raises(UserError, match='needs 5 neutral faces'):  # before any set is written
    synthetic._real_identities(tiny, pool, rendered=False, num_identities=5)  # pylint: disable=protected-access
