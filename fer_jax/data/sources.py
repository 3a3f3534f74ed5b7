"""Data sources: `KIND:ARG[@SPLIT]` names -> prepared TFDS datasets (ArrayRecord) -> random access.

`procedural:a` is the embedded default (domain a; `procedural:b` the second rendering domain). Other kinds
(licensed FER sets, synthetic sets) register a maker with `@register('kind')`. A maker gets
`(arg, config, data_dir)` and returns a TFDS builder that it has prepared; we read it with
`builder.as_data_source(split)`, which needs no TensorFlow.
"""
import dataclasses
import os

from fer_jax.errors import UserError

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
      raise UserError(f'{what}: unknown source kind {kind!r} in {item!r}; expected one of '
                      f'{", ".join(sorted(_known_kinds()))}')
    arg, _, split = rest.rpartition('@') if '@' in rest else (rest, '', '')
    out.append(Source(kind, arg, split or None))
  return out


def _known_kinds():
  _load_builtin_kinds()
  return _MAKERS


def _load_builtin_kinds():
  # Importing registers them; done lazily so that `sources` stays cheap to import.
  from fer_jax.data import procedural_source  # pylint: disable=import-outside-toplevel,unused-import
  from fer_jax.data import real_sources  # pylint: disable=import-outside-toplevel,unused-import
  from fer_jax import synthetic  # pylint: disable=import-outside-toplevel,unused-import


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
