"""A look at the data before any training: a face grid (subjects x emotions) and split statistics.

`preview(config, workdir)` writes WORKDIR/preview.png (rows = subjects, columns = the 6 emotions + neutral,
from the pool split when it exists) and WORKDIR/data_stats.json:
{"splits": {"train": {"total", "per_class", "subjects"}, ...}, "subject_overlap": {"train/test": 0, ...},
 "test_sources": {...}}. Subjects are counted per source, so two datasets never share a subject id.
"""

import itertools
import os

import numpy as np

from fer_jax.data import emotions, sources
from fer_jax.infra import grids, io_utils

SPLITS = ('train', 'validation', 'test', 'pool')


def _labels_and_subjects(ds):
  labels = np.empty(len(ds), np.int32)
  subjects = np.full(len(ds), -1, np.int64)
  for i in range(len(ds)):
    r = ds[i]
    labels[i] = r['label']
    subjects[i] = r.get('subject', -1)
  return labels, subjects


def _split_stats(labels, subjects):
  return {
    'total': int(len(labels)),
    'per_class': {
      name: int((labels == i).sum())
      for i, name in enumerate(emotions.EMOTIONS)
      if (labels == i).any() or i < emotions.NUM_EKMAN
    },
    'subjects': len({s for s in subjects.tolist() if s[1] >= 0}),
  }


def data_stats(config, workdir):
  """Per-split counts and subject overlaps of data.train_sources (+ the test split of each test source)."""
  per_split = {}
  for src in sources.parse_sources(config.data.train_sources, 'data.train_sources'):
    b = sources.builder(src, config, workdir)
    for split in SPLITS:
      if split in b.info.splits:
        labels, subj = _labels_and_subjects(b.as_data_source(split))
        keyed = np.empty(len(subj), object)
        keyed[:] = [(str(src), s) for s in subj.tolist()]
        old = per_split.get(split, (np.zeros(0, np.int32), np.empty(0, object)))
        per_split[split] = (np.concatenate([old[0], labels]), np.concatenate([old[1], keyed]))
  stats = {'splits': {k: _split_stats(*v) for k, v in per_split.items()}, 'subject_overlap': {}}
  for a, b in itertools.combinations(per_split, 2):
    sa = {s for s in per_split[a][1].tolist() if s[1] >= 0}
    sb = {s for s in per_split[b][1].tolist() if s[1] >= 0}
    stats['subject_overlap'][f'{a}/{b}'] = len(sa & sb)
  stats['test_sources'] = {}
  for src in sources.parse_sources(config.data.test_sources, 'data.test_sources'):
    labels, subj = _labels_and_subjects(sources.load(src, 'test', config, workdir))
    keyed = np.empty(len(subj), object)
    keyed[:] = [(str(src), s) for s in subj.tolist()]
    stats['test_sources'][str(src)] = _split_stats(labels, keyed)
  return stats


def face_grid(ds, num_rows=6):
  """[rows, 7] images: subjects that show the most emotions, one image per emotion (None if absent)."""
  labels, subjects = _labels_and_subjects(ds)
  first = {}
  for i, (lab, s) in enumerate(zip(labels.tolist(), subjects.tolist())):
    first.setdefault((s, lab), i)
  by_subject = {}
  for (s, lab), i in first.items():
    by_subject.setdefault(s, {})[lab] = i
  if set(by_subject) == {-1}:  # no subject ids: each row is just one example per class
    rows = [{lab: idx for lab, idx in zip(*np.unique(labels, return_index=True))}]
  else:
    rows = sorted((v for k, v in by_subject.items() if k >= 0), key=lambda v: -len(v))
  rows = rows[:num_rows]
  return [[ds[row[e]]['image'] if e in row else None for e in range(len(emotions.EMOTIONS))] for row in rows]


def preview(config, workdir):
  os.makedirs(workdir, exist_ok=True)
  src = sources.parse_sources(config.data.train_sources, 'data.train_sources')[0]
  b = sources.builder(src, config, workdir)
  split = 'pool' if 'pool' in b.info.splits else 'train'
  stats = data_stats(config, workdir)
  grids.save_grid(
    face_grid(b.as_data_source(split)),
    os.path.join(workdir, 'preview.png'),
    col_titles=emotions.EMOTIONS,
    title=f'{src} ({split} split): rows = subjects',
    cell=1.3,
    dpi=110,
  )
  io_utils.write_json(os.path.join(workdir, 'data_stats.json'), stats)
  return stats
