import collections
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from fer_jax.data import emotions, pipeline, preview, sources
from fer_jax.infra.errors import UserError
from tests.conftest import ROOT


def _split(config, name, src='procedural:a'):
  return sources.load(sources.parse_sources(src)[0], name, config, workdir='unused')


def test_splits_are_subject_disjoint_and_balanced(tiny):
  subjects = {}
  p = tiny.data.procedural
  for split, n_subj, per, classes in [
    ('train', p.train_subjects, p.images_per_emotion, 6),
    ('validation', p.validation_subjects, p.images_per_emotion, 6),
    ('test', p.test_subjects, p.images_per_emotion, 6),
    ('pool', p.pool_subjects, p.pool_images_per_emotion, 7),
  ]:
    ds = _split(tiny, split)
    labels = np.array([ds[i]['label'] for i in range(len(ds))])
    subjects[split] = {int(ds[i]['subject']) for i in range(len(ds))}
    assert len(subjects[split]) == n_subj
    np.testing.assert_array_equal(np.bincount(labels, minlength=7)[:classes], n_subj * per)
    if classes == 6:
      assert (labels != emotions.NEUTRAL).all()
  names = list(subjects)
  for i, a in enumerate(names):
    for b in names[i + 1 :]:
      assert not subjects[a] & subjects[b], (a, b)


def test_tfds_round_trip_features(tiny):
  ds = _split(tiny, 'train')
  r = ds[0]
  assert r['image'].dtype == np.uint8 and r['image'].shape == (32, 32, 1)
  assert r['aus'].shape == (emotions.NUM_AUS,) and r['aus'].dtype == np.float32
  b = sources.builder(sources.parse_sources('procedural:a')[0], tiny, 'unused')
  assert b.info.features['label'].names == list(emotions.EMOTIONS)
  assert b.info.file_format.value == 'array_record'


def test_tfds_build_and_read_without_tensorflow(tmp_path):
  code = f"""
import sys
sys.path.insert(0, {ROOT!r})
from configs import default
from fer_jax.data import sources, pipeline
c = default.get_config('tiny'); c.data.data_dir = {str(tmp_path)!r}
ds = sources.load(sources.parse_sources('procedural:b')[0], 'test', c, 'unused')
n = sum(1 for _ in pipeline.train_batches(pipeline.examples(ds), 8, 0, 0))
assert n == len(ds) // 8, n
import importlib.util
assert importlib.util.find_spec('tensorflow') is None, 'tensorflow is installed'
assert 'tensorflow' not in sys.modules
print('ok', len(ds))
"""
  proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.splitlines()[-1].startswith('ok')


def test_pipeline_is_deterministic_and_reshuffles_per_epoch(tiny):
  ds = pipeline.examples(_split(tiny, 'train'))
  labels = lambda seed, epoch: np.concatenate([b['label'] for b in pipeline.train_batches(ds, 8, seed, epoch)])
  np.testing.assert_array_equal(labels(0, 0), labels(0, 0))
  assert not np.array_equal(labels(0, 0), labels(0, 1))
  # An epoch is full batches of distinct records (the remainder dropped): its labels are a sub-multiset of the
  # set's, as many as fit in full batches.
  epoch, every = collections.Counter(labels(0, 0).tolist()), collections.Counter(pipeline.labels_of(ds).tolist())
  assert sum(epoch.values()) == len(ds) // 8 * 8 and not epoch - every


def test_processes_hold_blocks_of_each_global_batch(monkeypatch):
  """With P processes, stacking the processes' local batches (in process order) gives exactly the global batch
  one process reads: the same rows in the same order."""
  import grain  # pylint: disable=import-outside-toplevel

  ds = grain.MapDataset.range(37).map(lambda i: {'image': np.full((2, 2, 1), i, np.uint8), 'label': np.int32(i)})
  single = [b['label'] for b in pipeline.train_batches(ds, 8, seed=3, epoch=1)]
  local = []
  for p in range(4):
    monkeypatch.setattr(jax, 'process_count', lambda: 4)
    monkeypatch.setattr(jax, 'process_index', lambda p=p: p)
    local.append([b['label'] for b in pipeline.train_batches(ds, 8, seed=3, epoch=1)])
  assert len(single) == 37 // 8 and all(len(rows) == len(single) for rows in local)
  for i, batch in enumerate(single):
    np.testing.assert_array_equal(np.concatenate([rows[i] for rows in local]), batch)


def test_mixture_has_exact_proportions_and_prefixes(tiny):
  real = pipeline.examples(_split(tiny, 'train'))
  other = pipeline.examples(_split(tiny, 'pool'), 10)
  mix = pipeline.mixture([real, other])
  assert len(mix) == len(real) + 10
  np.testing.assert_array_equal(mix[len(real)]['image'], _split(tiny, 'pool')[0]['image'])
  with pytest.raises(UserError, match='holds only'):
    pipeline.examples(_split(tiny, 'pool'), 10**6, name='pool')
  with pytest.raises(UserError, match='empty'):
    pipeline.mixture([pipeline.examples(_split(tiny, 'train'), 0)])


def test_fraction_batches_hold_the_share_and_an_epoch_is_one_pass_over_the_real_set():
  """Each batch: exactly round(f x G) synthetic rows; an epoch: len(real) // real rows per batch steps, whatever
  the synthetic set's size; the synthetic rows go through the whole set before repeating one; (seed, epoch)
  alone decide the rows."""
  import grain  # pylint: disable=import-outside-toplevel

  def rows(n, offset):
    return grain.MapDataset.range(n).map(
      lambda i: {'image': np.zeros((2, 2, 1), np.uint8), 'label': np.int32(i + offset)}
    )

  real, synthetic = rows(40, 0), rows(25, 1000)  # labels tell the two apart
  epoch = lambda e, syn=synthetic: [b['label'] for b in pipeline.fraction_batches(real, syn, 0.25, 8, seed=1, epoch=e)]
  batches = epoch(0)
  assert len(batches) == 40 // 6 and all((b >= 1000).sum() == 2 for b in batches)  # round(0.25 x 8) = 2
  assert len(epoch(0, rows(500, 1000))) == len(batches)  # a 20x larger synthetic set: as many steps
  real_rows = np.concatenate([b[b < 1000] for b in batches])
  assert len(set(real_rows.tolist())) == len(real_rows)  # a permutation of the real set, none twice
  drawn = np.concatenate([b[b >= 1000] for e in range(3) for b in epoch(e)])  # 36 rows: one pass, then more
  assert sorted(drawn[:25].tolist()) == list(range(1000, 1025))
  np.testing.assert_array_equal(np.concatenate(epoch(2)), np.concatenate(epoch(2)))
  assert not np.array_equal(np.concatenate(epoch(1)), np.concatenate(epoch(2)))
  with pytest.raises(UserError, match='synthetic_fraction'):
    pipeline.fraction_batches(real, synthetic, 0.01, 8, seed=1, epoch=0)


def test_eval_batches_cover_every_example_once(tiny):
  ds = pipeline.examples(_split(tiny, 'test'))
  batches = list(pipeline.eval_batches(ds, 16))
  assert sum(int(b['mask'].sum()) for b in batches) == len(ds)
  assert all(len(b['label']) == 16 for b in batches)


@pytest.mark.parametrize(
  'spec,match',
  [
    ('', 'is empty'),
    ('procedural', 'not KIND:ARG'),
    ('imagenet:/x', "unknown source kind 'imagenet'"),
    ('procedural:z', "unknown rendering domain 'z'"),
  ],
)
def test_bad_source_names_are_clear(tiny, spec, match):
  with pytest.raises(UserError, match=match):
    for src in sources.parse_sources(spec):
      sources.builder(src, tiny, 'unused')


def test_preview_writes_grid_and_stats(tiny, tmp_path):
  stats = preview.preview(tiny, str(tmp_path))
  saved = json.loads((tmp_path / 'data_stats.json').read_text())
  assert saved == json.loads(json.dumps(stats))
  p = tiny.data.procedural
  assert saved['splits']['train']['total'] == p.train_subjects * 6 * p.images_per_emotion
  assert saved['splits']['train']['per_class']['anger'] == p.train_subjects * p.images_per_emotion
  assert saved['splits']['train']['subjects'] == p.train_subjects
  assert saved['splits']['pool']['per_class']['neutral'] == p.pool_subjects * p.pool_images_per_emotion
  assert set(saved['subject_overlap'].values()) == {0}
  assert (tmp_path / 'preview.png').stat().st_size > 10_000


def test_batches_cut_from_memory_are_the_records_in_the_epochs_permutation(tiny):
  """The training set is decoded once (`in_memory`); every epoch's batch b holds exactly the records at positions
  b*G..(b+1)*G of the (seed, epoch) permutation, as read from the TFDS source through grain."""
  ds = pipeline.examples(_split(tiny, 'train'))
  order = np.random.default_rng([5, 2]).permutation(len(ds))
  batches = list(pipeline.train_batches(pipeline.in_memory(ds), 8, seed=5, epoch=2))
  assert len(batches) == len(ds) // 8
  for b, batch in enumerate(batches):
    want = [ds[int(i)] for i in order[b * 8 : (b + 1) * 8]]
    np.testing.assert_array_equal(batch['image'], np.stack([r['image'] for r in want]))
    np.testing.assert_array_equal(batch['label'], np.array([r['label'] for r in want], np.int32))
    assert batch['image'].dtype == np.uint8 and batch['label'].dtype == np.int32
