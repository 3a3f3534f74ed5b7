"""Input pipeline: grain over TFDS random-access sources.

A training set is a *mixture*: a list of (source, count) parts whose prefixes are concatenated, so
real + k x synthetic has exactly the requested proportions, and a nested synthetic set (k=1 a prefix of
k=2) stays nested. It is read and decoded once (`in_memory`), and each epoch's batches are cut from memory in
a fresh permutation from (seed, epoch); the same seed gives the same batches whatever happened before (what
makes a resumed run equal an uninterrupted one). Batches hold this process's rows of the global batch; images
stay uint8 until they are on the device.
"""

import dataclasses

import grain
import numpy as np

from fer_jax.infra.errors import UserError


def _record(x):
  return {'image': np.asarray(x['image'], np.uint8), 'label': np.int32(x['label'])}


def examples(data_source, count=None, name='source'):
  """The first `count` records (all when None) of a random-access source, as a grain MapDataset."""
  ds = grain.MapDataset.source(data_source)
  n = len(ds)
  if count is None:
    count = n
  count = int(count)
  if count < 0:
    raise UserError(f'{name}: asked for {count} examples; expected a non-negative number')
  if count > n:
    raise UserError(f'{name}: asked for {count} examples but it holds only {n}')
  return ds.slice(slice(0, count)).map(_record)


def mixture(parts):
  """Concatenates MapDatasets: [(ds, name), ...] -> one MapDataset (empty parts are skipped)."""
  parts = [p for p in parts if len(p) > 0]
  if not parts:
    raise UserError('the training set is empty: every training source gave 0 examples')
  return parts[0] if len(parts) == 1 else grain.MapDataset.concatenate(parts)


def labels_of(ds):
  if isinstance(ds, Arrays):
    return ds.label
  return np.array([ds[i]['label'] for i in range(len(ds))], np.int32)


def process_rows(ds, global_batch_size):
  """This process's rows of every global batch of `ds` (read in order, G = global_batch_size at a time).

  Process p of P holds rows [p*G/P, (p+1)*G/P) of each global batch, so the batch assembled across processes
  (`make_array_from_process_local_data`, processes in order) is row for row the one a single process reads:
  each example meets the same dropout mask, and 2 processes train as 1 does. A trailing partial batch is
  left out (training drops it; evaluation pads to whole batches first).
  """
  import jax  # pylint: disable=import-outside-toplevel

  pc, p = jax.process_count(), jax.process_index()
  if pc == 1:
    return ds
  local = global_batch_size // pc
  n = len(ds) // global_batch_size * local
  return grain.MapDataset.range(n).map(lambda k: ds[k // local * global_batch_size + p * local + k % local])


# One read thread: decoding a record is Python under the GIL, so a second thread only contends (measured at
# the quick preset: 5,060 images/s with 1 thread, 3,260 with 2; `benchmark --what=input`).
_READ_THREADS = 1


def read_options(num_threads=_READ_THREADS):
  return grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=256)


def shuffled(ds, seed, epoch):
  """`ds` in the order of one permutation drawn from (seed, epoch).

  Not `MapDataset.shuffle`: it draws every index through grain's index_shuffle, ~50 us apiece on a 2-core
  machine, and the whole quick pipeline ran at 5,600 images/s with it vs 7,600-8,700 with this (the
  permutation costs 8 bytes per example).
  """
  order = np.random.default_rng([int(seed), int(epoch)]).permutation(len(ds))
  return grain.MapDataset.range(len(ds)).map(lambda i: ds[int(order[i])])


@dataclasses.dataclass(frozen=True)
class Arrays:
  """A whole training set in memory: uint8 images [N,H,W,C], int32 labels [N] and, where rows weigh differently
  in the loss (classifier.mix = 'weighted'), float32 weights [N]."""

  image: np.ndarray
  label: np.ndarray
  weight: np.ndarray | None = None

  def __len__(self):
    return len(self.label)

  def __getitem__(self, i):
    row = {'image': self.image[i], 'label': self.label[i]}
    return row if self.weight is None else {**row, 'weight': self.weight[i]}


def in_memory(ds):
  """`ds` (a MapDataset of records, or Arrays) read and decoded once: the classifier's epochs then cost no
  reading (one grain pass over the quick preset's largest set takes ~0.7 s; `benchmark --what=input`)."""
  if isinstance(ds, Arrays):
    return ds
  records = [ds[i] for i in range(len(ds))]
  if not records:
    return Arrays(np.zeros((0, 1, 1, 1), np.uint8), np.zeros((0,), np.int32))
  return Arrays(np.stack([r['image'] for r in records]), np.array([r['label'] for r in records], np.int32))


def _local_rows(batch, global_batch_size):
  """This process's block of rows of a global batch (as `process_rows`)."""
  import jax  # pylint: disable=import-outside-toplevel

  local = global_batch_size // jax.process_count()
  return batch[jax.process_index() * local :][:local]


def train_batches(ds, global_batch_size, seed, epoch):
  """One epoch of shuffled full batches (the remainder is dropped), this process's rows of each."""
  ds = in_memory(ds)
  order = np.random.default_rng([int(seed), int(epoch)]).permutation(len(ds))  # as `shuffled`
  for b in range(len(ds) // global_batch_size):
    yield ds[_local_rows(order[b * global_batch_size : (b + 1) * global_batch_size], global_batch_size)]


def steps_per_epoch(ds, global_batch_size):
  return len(ds) // global_batch_size


def eval_batches(ds, global_batch_size, num_threads=_READ_THREADS):
  """All examples in order, the last batch padded; `mask` marks real rows."""
  import jax  # pylint: disable=import-outside-toplevel

  n = len(ds)
  padded = -(-n // global_batch_size) * global_batch_size
  local = global_batch_size // jax.process_count()

  def at(i):
    r = ds[min(i, n - 1)]
    return {**r, 'mask': np.bool_(i < n)}

  idx = grain.MapDataset.range(padded).map(at)
  return (
    process_rows(idx, global_batch_size).batch(local, drop_remainder=True).to_iter_dataset(read_options(num_threads))
  )


def fraction_batches(real, synthetic, fraction, global_batch_size, seed, epoch):
  """One epoch of full batches each holding round(fraction x G) synthetic rows and the rest real ones.

  The epoch is one pass over the real set (len(real) // real rows per batch steps), so a run is as long
  whatever the size of the synthetic set; synthetic rows go through the set pass after pass, each pass a
  permutation of its own. The rows of an epoch depend on (seed, epoch) alone, as in `train_batches`.
  """
  n_syn = int(round(fraction * global_batch_size))
  n_real = global_batch_size - n_syn
  if not 0 < n_syn < global_batch_size:
    raise UserError(
      f'classifier.synthetic_fraction={fraction} of a batch of {global_batch_size} gives {n_syn} synthetic rows; '
      'expected at least one synthetic and one real row'
    )
  steps = len(real) // n_real
  real_order = np.random.default_rng([int(seed), int(epoch)]).permutation(len(real))
  # Synthetic rows: pass p over the set is a permutation from (seed, p); epoch e goes on from where e - 1 ended.
  position = int(epoch) * steps * n_syn + np.arange(steps * n_syn)
  passes = position // len(synthetic)
  syn_order = np.empty(len(position), np.int64)
  for p in np.unique(passes):
    chosen = passes == p
    syn_order[chosen] = np.random.default_rng([int(seed), 1, int(p)]).permutation(len(synthetic))[
      position[chosen] % len(synthetic)
    ]

  real, synthetic = in_memory(real), in_memory(synthetic)

  def batch(b):
    r, y = real[real_order[b * n_real : (b + 1) * n_real]], synthetic[syn_order[b * n_syn : (b + 1) * n_syn]]
    return {k: _local_rows(np.concatenate([r[k], y[k]]), global_batch_size) for k in ('image', 'label')}

  return map(batch, range(steps))
