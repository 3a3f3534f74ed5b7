"""Quality of a synthetic set: judge agreement against its real-face reference, and the realism score."""

import json

import numpy as np
import pytest
from scipy import stats

from fer_jax import report
from fer_jax.data import emotions, faces
from fer_jax.data import pool as pool_lib
from fer_jax.eval import synthetic_quality as sq
from fer_jax.synthetic import SyntheticFaces, SyntheticFacesConfig


class _ArraySyntheticFaces(SyntheticFaces):
  """A synthetic set in the real on-disk format, filled from arrays instead of the GANs (no GAN training)."""

  def _generate_examples(self):
    images, labels, subjects = self._generators
    for i in range(len(images)):
      yield i, {'image': images[i], 'label': int(labels[i]), 'subject': np.int32(subjects[i])}


def _write_set(tmp_path, images, labels, subjects):
  cfg = SyntheticFacesConfig(name='arrays', image_size=images.shape[1], num_identities=len(np.unique(subjects)))
  b = _ArraySyntheticFaces(
    config=cfg, data_dir=str(tmp_path / 'synthetic'), file_format='array_record', generators=(images, labels, subjects)
  )
  b.download_and_prepare()
  return b.data_dir


def _rendered(num_subjects, seed, first_subject=0):
  """Procedural faces: `num_subjects` subjects x the 6 Ekman emotions."""
  specs = [(first_subject + s, e, 0) for s in range(num_subjects) for e in range(emotions.NUM_EKMAN)]
  images, meta = faces.render_specs(specs, 32, seed, 'a', 0.25, 1.0)
  return images, meta['subject']


def test_evaluate_on_real_faces_posing_as_synthetic(tiny, tmp_path):
  # The "synthetic" set is the held-out pool faces of the Ekman classes with their true labels, so the
  # judge's agreement on it must equal its real held-out reference exactly.
  workdir = str(tmp_path)
  pool = pool_lib.load_pool(tiny, workdir)
  ho = pool.holdout_idx[pool.labels[pool.holdout_idx] < emotions.NUM_EKMAN]
  folder = _write_set(tmp_path, pool.images[ho], pool.labels[ho], pool.subjects[ho])
  q = sq.evaluate(tiny, workdir, folder, realism_steps=20)
  json.dumps(q)
  assert q['judge_agreement'] == pytest.approx(q['judge_real_holdout_accuracy'])
  assert set(q['judge_agreement_per_class']) == set(emotions.EKMAN)
  for v in [
    q['judge_agreement'],
    q['judge_real_holdout_accuracy'],
    q['realism_accuracy'],
    *q['realism_ci95'],
    *q['judge_agreement_per_class'].values(),
  ]:
    assert 0.0 <= v <= 1.0
  lo, hi = q['realism_ci95']
  assert lo <= q['realism_accuracy'] <= hi
  assert q['n_judged'] == len(ho)
  # Balanced: real and fake are each cut to the same count in train and held-out parts.
  assert q['realism_n_train'] % 2 == 0 and q['realism_n_heldout'] % 2 == 0
  assert 0 < q['realism_n_train'] + q['realism_n_heldout'] <= 2 * len(ho)
  images, labels, subjects = sq.load_synthetic(tiny, workdir, folder, max_images=7)
  assert len(images) == 7 and list(labels) == list(pool.labels[ho][:7])
  assert list(subjects) == list(pool.subjects[ho][:7])
  stats = q['image_statistics']
  assert set(stats) == {'real', 'synthetic'} and set(stats['real']) == {'highpass', 'high_frequency_power', 'contrast'}
  md = report.markdown.quality_markdown({'replicates': {'0': q}})
  assert 'pool-judge agreement' in md and '50% = indistinguishable' in md
  assert "| real pool faces (the probe's other side) |" in md and 'high-pass residual' in md


def test_split_by_subject_is_disjoint_and_complete():
  subjects = np.repeat(np.arange(10), 6)
  tr, ho = sq.split_by_subject(subjects, 0.3, np.random.default_rng(0))
  assert not set(subjects[tr]) & set(subjects[ho])
  assert sorted(np.concatenate([tr, ho])) == list(range(60)) and len(set(subjects[ho])) == 3
  assert len(set(subjects[sq.split_by_subject(subjects[:12], 0.3, np.random.default_rng(0))[1]])) == 1


def test_clustered_interval_is_wilson_for_independent_faces_and_wider_for_clustered_ones():
  rng = np.random.default_rng(0)
  hit = rng.random(120) < 0.4
  k = int(hit.sum())
  plain = stats.binomtest(k, 120).proportion_ci(0.95, method='wilson')
  assert sq.clustered_wilson(hit, np.arange(120)) == pytest.approx([plain.low, plain.high], abs=0.005)
  # 20 subjects x 6 faces, all faces of a subject judged alike: as informative as 20 independent faces.
  clustered = np.repeat(rng.random(20) < 0.4, 6)
  by_subject = stats.binomtest(int(clustered.sum()) // 6, 20).proportion_ci(0.95, method='wilson')
  assert sq.clustered_wilson(clustered, np.repeat(np.arange(20), 6)) == pytest.approx(
    [by_subject.low, by_subject.high], abs=0.02
  )


@pytest.fixture(scope='module')
def rendered():
  return _rendered(60, seed=5)


def test_realism_tells_black_images_from_faces(rendered):
  images, subjects = rendered
  black = np.zeros_like(images)
  r = sq.realism(images, subjects, black, subjects + 1000, 30, 0)
  assert r['accuracy'] >= 0.95 and r['ci95'][0] > 0.8
  idx = r['index']
  for side, subj in (('real', subjects), ('fake', subjects + 1000)):
    assert not set(subj[idx[f'{side}_train']]) & set(subj[idx[f'{side}_heldout']])
  assert len(idx['real_heldout']) == len(idx['fake_heldout']) == r['n_heldout'] // 2
  assert len(idx['real_train']) == len(idx['fake_train']) == r['n_train'] // 2


def test_realism_is_chance_for_two_halves_of_the_same_faces(rendered):
  images, subjects = rendered
  a, b = subjects < 30, subjects >= 30
  r = sq.realism(images[a], subjects[a], images[b], subjects[b], 30, 0)
  lo, hi = r['ci95']
  # Identical distributions: chance, within the full width of the (subject-clustered) interval.
  assert lo < r['accuracy'] < hi and abs(r['accuracy'] - 0.5) < hi - lo < 0.5


def test_image_statistics_see_sensor_noise_and_its_absence(rendered):
  images, _ = rendered
  x = images.astype(np.float64)
  smooth = (x + np.roll(x, 1, 1) + np.roll(x, -1, 1) + np.roll(x, 1, 2) + np.roll(x, -1, 2)) / 5
  noisy = x + np.random.default_rng(0).normal(0, 12, x.shape)
  as_u8 = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)
  s, m, n = (sq.image_statistics(as_u8(a)) for a in (smooth, x, noisy))
  for key in ('highpass', 'high_frequency_power'):
    assert s[key][1] < m[key][1] < n[key][1], (key, s[key], m[key], n[key])
  flat = sq.image_statistics(np.full((3, 8, 8, 1), 128, np.uint8))
  assert all(v == [0.0, 0.0, 0.0] for v in flat.values())
  assert m['contrast'][0] <= m['contrast'][1] <= m['contrast'][2]
