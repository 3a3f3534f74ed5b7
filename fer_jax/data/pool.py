"""The GAN pool: split `pool` of `data.pool_sources`, split once by subject for everything that learns from it.

Both GANs and the evaluation instruments (`fer_jax.eval.instruments`) train on the same training subjects;
the held-out subjects (`data.pool_holdout_fraction` of them) are the reference of the identity GAN's
metrics and the faces the expression GAN is evaluated on. One subject-id rule (source index * 2^20 +
subject: people of two sources are never one person), one holdout rule, one resumable batch stream.
"""

import dataclasses

import grain
import jax
import numpy as np

from fer_jax.data import pipeline, sources
from fer_jax.infra.errors import UserError

SOURCE_STRIDE = 1 << 20  # subject id = source index * SOURCE_STRIDE + the source's own subject id


@dataclasses.dataclass(frozen=True)
class Pool:
  """Every pool record (in source order) and the subject split; `train_*` / `holdout_*` index into them."""

  source: grain.MapDataset  # random access to the records
  images: np.ndarray  # uint8 [N, H, W, 1]
  labels: np.ndarray  # int32 [N], indices into emotions.EMOTIONS
  subjects: np.ndarray  # int64 [N], unique across sources
  train_idx: np.ndarray  # records of the training subjects, in record order
  holdout_idx: np.ndarray  # records of the held-out subjects, in record order
  aus: np.ndarray | None = None  # float32 [N, NUM_AUS] action-unit intensities; None unless every source has them

  @property
  def train_images(self):
    return self.images[self.train_idx]

  @property
  def train_subjects(self):
    return self.subjects[self.train_idx]

  def train_dataset(self, with_aus=False):
    """grain MapDataset of the training subjects' records {'image' uint8, 'label' int32, 'index': its position
    in train_idx} (+ 'aus' float32 [NUM_AUS] with `with_aus`)."""
    src, idx = self.source, self.train_idx
    return grain.MapDataset.range(len(idx)).map(lambda j: {**_record(src[int(idx[j])], with_aus), 'index': np.int32(j)})

  def describe(self):
    """Counts for logs and metrics.json."""
    return dict(
      train_images=int(len(self.train_idx)),
      train_subjects=int(len(np.unique(self.train_subjects))),
      holdout_images=int(len(self.holdout_idx)),
      holdout_subjects=int(len(np.unique(self.subjects[self.holdout_idx]))),
    )


class Pairs:
  """The pool's pairs: for each training face, the training faces of the same person with another expression
  (every subject of the procedural pool, and of RaFD, Oulu-CASIA, CK+, MMI or JAFFE, is recorded in several).
  A paired translation loss aims G's translation of a face at one of them; a face without any (a subject seen
  in one expression only, or a pool without subject ids) is left to the unpaired losses."""

  def __init__(self, pool, seed):
    self.pool, self.seed = pool, int(seed)
    subjects, labels = pool.train_subjects, pool.labels[pool.train_idx]
    by_subject = {}
    for j, s in enumerate(subjects):
      by_subject.setdefault(int(s), []).append(j)
    self.partners = [
      np.array([i for i in by_subject[int(s)] if labels[i] != labels[j]], np.int64) for j, s in enumerate(subjects)
    ]

  @property
  def share(self):
    """The share of training faces that have a partner."""
    return float(np.mean([len(p) > 0 for p in self.partners])) if self.partners else 0.0

  def draw(self, index, step, global_batch_size, with_aus=False):
    """Each row's partner for training step `step` (this process's rows `index`, positions in train_idx): one of
    its partners drawn from (seed, step) and the row's position in the global batch, so that a resumed run and
    any number of processes draw the same. Returns {'pair_image', 'pair_label', 'has_pair'} (+ 'pair_aus')."""
    u = np.random.default_rng([self.seed, 7, int(step)]).random(global_batch_size)
    u = u[jax.process_index() * len(index) :][: len(index)]
    rows = [self.partners[int(j)] for j in index]
    has = np.array([len(p) > 0 for p in rows])
    chosen = np.array([p[int(x * len(p))] if len(p) else int(j) for p, x, j in zip(rows, u, index)], np.int64)
    at = self.pool.train_idx[chosen]
    out = {'pair_image': self.pool.images[at], 'pair_label': self.pool.labels[at], 'has_pair': has.astype(np.float32)}
    if with_aus:
      out['pair_aus'] = self.pool.aus[at]
    return out


def _record(r, with_aus=False):
  out = {'image': np.asarray(r['image'], np.uint8), 'label': np.int32(r['label'])}
  if with_aus:
    out['aus'] = np.asarray(r['aus'], np.float32)
  return out


def load_pool(config, workdir):
  """The GAN pool of `config` (TFDS datasets prepared under `sources.data_dir(config, workdir)`)."""
  parts = [
    sources.load(s, 'pool', config, workdir)
    for s in sources.parse_sources(config.data.pool_sources, 'data.pool_sources')
  ]
  ds = (
    grain.MapDataset.source(parts[0])
    if len(parts) == 1
    else grain.MapDataset.concatenate([grain.MapDataset.source(p) for p in parts])
  )
  if len(ds) == 0:
    raise UserError(f'data.pool_sources={config.data.pool_sources!r}: the GAN pool is empty')
  source_of = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
  recs = [ds[i] for i in range(len(ds))]
  images = np.stack([np.asarray(r['image'], np.uint8) for r in recs])
  size = int(config.data.image_size)
  if images.shape[1:] != (size, size, 1):
    raise UserError(
      f'GAN pool images are {images.shape[1:]}; expected ({size}, {size}, 1) (data.image_size, greyscale)'
    )
  labels = np.array([int(r['label']) for r in recs], np.int32)
  subjects = source_of * SOURCE_STRIDE + np.array([int(r['subject']) for r in recs], np.int64)
  # Action units: the procedural sources record them (the expression GAN can be conditioned on them).
  aus = np.stack([np.asarray(r['aus'], np.float32) for r in recs]) if all('aus' in r for r in recs) else None
  held = choose_holdout(subjects, float(config.data.pool_holdout_fraction), int(config.seed))
  is_held = np.isin(subjects, held)
  return Pool(ds, images, labels, subjects, np.nonzero(~is_held)[0], np.nonzero(is_held)[0], aus)


def choose_holdout(subjects, fraction, seed):
  """The held-out subject ids: the first round(fraction * #subjects) of a permutation drawn from `seed`."""
  uniq = np.unique(subjects)
  n_hold = int(round(len(uniq) * fraction))
  if not (0 < fraction < 1 and 2 <= n_hold <= len(uniq) - 2):
    raise UserError(
      f'data.pool_holdout_fraction={fraction} of {len(uniq)} pool subjects leaves fewer than 2 subjects '
      'held out or for training; expected a fraction in (0, 1) that keeps at least 2 subjects on each side'
    )
  return np.random.default_rng(seed).permutation(uniq)[:n_hold]


def batches(ds, global_batch_size, seed, start_step, what='the GAN'):
  """Endless stream of global batches of `ds` from step `start_step` on: epoch e is the permutation drawn from
  (seed, e), so a resumed run reads exactly the batches an uninterrupted one would have read."""
  per_epoch = pipeline.steps_per_epoch(ds, global_batch_size)
  if per_epoch == 0:
    raise UserError(f'{what}: its batch size {global_batch_size} exceeds the {len(ds)} training faces of the GAN pool')
  local = global_batch_size // jax.process_count()
  epoch, skip = divmod(int(start_step), per_epoch)
  while True:
    rows = pipeline.process_rows(pipeline.shuffled(ds, seed, epoch), global_batch_size)
    batched = rows.batch(local, drop_remainder=True).slice(slice(skip, None))
    yield from batched.to_iter_dataset(pipeline.read_options())
    epoch, skip = epoch + 1, 0
