"""Extra sweep axes: any config key crossed with regimes x multiples x seeds (`sweep.axes`).

`--config.sweep.axes='classifier.real_fraction=0.25,0.5,1;synthetic.psi=0.7,1'` (from Python the same
string). Each value is read as the type the config already has at that key. An axis is tied to the stage its
key configures, and a value creates only what depends on it:

- `classifier.*`: the runs only (every upstream stage is reused);
- `synthetic.*`: one synthetic set per value (the GANs are reused); runs that read no synthetic set (real only)
  are not repeated for it;
- `identity_gan.*` / `expression_gan.*`: that GAN per value (the other is reused), then its synthetic sets.

Keys of the shared data, the fixed axes (`classifier.regime`, `classifier.multiple`, `seed`) and the sweep
section itself are refused: each value would need another dataset or is already an axis.
"""

import difflib
import itertools

from fer_jax.infra.errors import UserError

STAGES = ('identity_gan', 'expression_gan', 'synthetic', 'classifier')
FIXED = ('classifier.regime', 'classifier.multiple', 'classifier.synthetic_source')


def only(axes, *sections):
  """The (key, value) pairs of `axes` whose key is in one of `sections` (e.g. 'synthetic')."""
  return tuple((k, v) for k, v in axes if k.split('.')[0] in sections)


def text(value):
  return f'{value:g}' if isinstance(value, float) else str(value)


def tag(axes):
  """The suffix naming what `axes` ((key, value) pairs) make: '' without axes, else '__KEY=VALUE...'."""
  return ''.join(f'__{k}={text(v)}' for k, v in axes)


def combinations(config):
  """Every crossing of the axes' values, as (key, value) pairs, the first axis slowest; [()] without axes."""
  parsed = parse(config)
  return [tuple(zip([k for k, _ in parsed], values)) for values in itertools.product(*[v for _, v in parsed])]


def _leaves(config, prefix=''):
  out = []
  for k, v in config.items():
    path = f'{prefix}{k}'
    out += _leaves(v, f'{path}.') if hasattr(v, 'items') else [path]
  return out


def _value(key, text, current):
  text = text.strip()
  try:
    if isinstance(current, bool):
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError
      return text.lower() in ('true', '1')
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
    if isinstance(current, str):
      return text
  except ValueError:
    raise UserError(
      f'sweep.axes: {key}={text!r} is not a {type(current).__name__} (the type of {key} in the config)'
    ) from None
  raise UserError(f'sweep.axes: {key} holds a {type(current).__name__}; an axis takes a number, a word or a flag')


def parse(config):
  """sweep.axes -> ((key, (values...)), ...) in the order written; one clear error for anything else."""
  text = config.sweep.axes
  if not isinstance(text, str):
    raise UserError(
      f'sweep.axes={text!r}; expected one string, e.g. "classifier.real_fraction=0.5,1;synthetic.psi=0.7,1"'
    )
  leaves = _leaves(config)
  out = []
  for part in (p.strip() for p in text.split(';')):
    if not part:
      continue
    key, sep, values = part.partition('=')
    key = key.strip()
    if not sep or not values.strip():
      raise UserError(f'sweep.axes: {part!r} is not KEY=V1,V2 (e.g. classifier.real_fraction=0.5,1)')
    if key not in leaves:
      near = difflib.get_close_matches(key, leaves, n=1)
      raise UserError(f'sweep.axes: no config key {key!r}' + (f'; did you mean {near[0]}?' if near else ''))
    stage = key.split('.')[0]
    if key in FIXED or key == 'seed' or stage not in STAGES:
      raise UserError(
        f'sweep.axes: {key} cannot be an axis; axes are keys of the {", ".join(STAGES)} sections '
        "(the regime, multiple and seed are the sweep's own axes, sweep.regimes/multiples/seeds)"
      )
    if any(k == key for k, _ in out):
      raise UserError(f'sweep.axes: {key} is listed twice')
    node = config
    for p in key.split('.'):
      node = node[p]
    vals = tuple(_value(key, v, node) for v in values.split(',') if v.strip())
    # Values name directories (axes.tag); '+' joins DiffAugment's policies (identity_gan.diffaugment).
    if any(isinstance(v, str) and not v.replace('_', '').replace('-', '').replace('+', '').isalnum() for v in vals):
      raise UserError(f'sweep.axes: {key}={values}: a word value may hold letters, digits, -, _ and + only')
    if len(set(vals)) != len(vals):
      raise UserError(f'sweep.axes: {key} lists a value twice ({values})')
    out.append((key, vals))
  return tuple(out)
