"""Data sources: `KIND:ARG[@SPLIT]` names -> prepared TFDS datasets (ArrayRecord) -> random access.

`procedural:a` is the embedded default (domain a; `procedural:b` the second rendering domain). Other kinds
(licensed FER sets, synthetic sets) register a maker with `@register('kind')`. A maker gets
`(arg, config, data_dir)` and returns a TFDS builder that it has prepared; we read it with
`builder.as_data_source(split)`, which needs no TensorFlow.
"""

import dataclasses
import os
import shutil

from fer_jax.infra import io_utils
from fer_jax.infra.errors import UserError

_MAKERS = {}


def register(kind):
  def deco(fn):
    _MAKERS[kind] = fn
    return fn

  return deco


@dataclasses.dataclass(frozen=True)
class Source:
  kind: str
  arg: str
  split: str | None = None  # overrides the split the role would read (e.g. `@train` for the GAN pool)

  def __str__(self):
    return f'{self.kind}:{self.arg}' + (f'@{self.split}' if self.split else '')


def parse_sources(spec, what='data.train_sources'):
  """'procedural:a,procedural:b@test' -> [Source, ...], with one clear error for anything malformed."""
  items = [s.strip() for s in str(spec).split(',') if s.strip()]
  if not items:
    raise UserError(f'{what} is empty; expected KIND:ARG[@SPLIT], e.g. procedural:a')
  out = []
  for item in items:
    kind, sep, rest = item.partition(':')
    if not sep or not rest:
      raise UserError(f'{what}: {item!r} is not KIND:ARG[@SPLIT] (e.g. procedural:a)')
    if kind not in _known_kinds():
      raise UserError(
        f'{what}: unknown source kind {kind!r} in {item!r}; expected one of {", ".join(sorted(_known_kinds()))}'
      )
    arg, _, split = rest.rpartition('@') if '@' in rest else (rest, '', '')
    out.append(Source(kind, arg, split or None))
  return out


def _known_kinds():
  _load_builtin_kinds()
  return _MAKERS


def _load_builtin_kinds():
  # Importing registers them; done lazily so that `sources` stays cheap to import.
  # pylint: disable=import-outside-toplevel,unused-import
  from fer_jax.data import procedural_source, real_sources, synthetic_source  # noqa: F401


def prepare(b, on_failure=None, **kwargs):
  """`b.download_and_prepare(**kwargs)`, one process at a time per dataset (a second waits, then reuses it).

  Holding the lock, any `incomplete.*` folder next to the dataset is a leftover of a preparation that was
  killed (TFDS writes there and renames at the end): it is removed before preparing again. `on_failure`
  runs under the lock when preparing fails, before the error propagates.
  """
  version_dir = os.fspath(b.data_dir)
  if os.path.exists(os.path.join(version_dir, 'dataset_info.json')):
    return b  # prepared: no lock needed to read it
  config_dir = os.path.dirname(version_dir)
  os.makedirs(config_dir, exist_ok=True)
  with io_utils.locked(os.path.join(config_dir, '.lock'), config_dir, wait=True):
    if os.path.exists(os.path.join(version_dir, 'dataset_info.json')):  # prepared while we waited
      b.info.read_from_directory(version_dir)
      return b
    for name in os.listdir(config_dir):
      if name.startswith('incomplete'):
        shutil.rmtree(os.path.join(config_dir, name), ignore_errors=True)
    try:
      b.download_and_prepare(**kwargs)
    except BaseException:
      if on_failure is not None:
        on_failure()
      raise
  return b


# Which images each split of a licensed dataset holds ('pool' is the train split with neutral faces; 'full'
# is everything). The procedural splits are disjoint sets of subjects.
_REAL_MEMBERS = {
  'train': {'train'},
  'pool': {'train'},
  'validation': {'validation'},
  'test': {'test'},
  'full': {'train', 'validation', 'test'},
}


def _dataset(src):
  return src.kind, src.arg if src.kind in ('procedural',) else os.path.abspath(os.path.expanduser(src.arg))


def check_pool_disjoint(config):
  """Refuses GAN pool sources that share images with a test source (a GAN that saw test faces leaks them
  into the synthetic set), e.g. pool_sources=mmi:PATH with test_sources=mmi:PATH@full."""
  for p in parse_sources(config.data.pool_sources, 'data.pool_sources'):
    for t in parse_sources(config.data.test_sources, 'data.test_sources'):
      if _dataset(p) != _dataset(t):
        continue
      ps, ts = p.split or 'pool', t.split or 'test'
      members = _REAL_MEMBERS if p.kind not in ('procedural', 'synthetic') else {s: {s} for s in (ps, ts)}
      if members.get(ps, {ps}) & members.get(ts, {ts}):
        raise UserError(
          f'data.pool_sources {p} and data.test_sources {t} share images: the GANs would learn '
          'from test faces. Use another dataset for the pool or a test split without its '
          'train images.'
        )


def data_dir(config, workdir):
  return config.data.data_dir or os.path.join(workdir, 'tfds')


def builder(source, config, workdir):
  """The prepared TFDS builder of `source` (prepared on first use, reused afterwards)."""
  return _known_kinds()[source.kind](source.arg, config, data_dir(config, workdir))


def load(source, split, config, workdir):
  """Random-access data source of one split (the source's `@SPLIT` wins over `split`)."""
  b = builder(source, config, workdir)
  split = source.split or split
  if split not in b.info.splits:
    raise UserError(f'source {source} has no split {split!r}; it has {", ".join(sorted(b.info.splits))}')
  return b.as_data_source(split)
