"""The results table's contract: results.csv's columns, how a cell is written and read back, and which runs failed.

A table is any results.csv with the REQUIRED columns (from a sweep, edited by hand, or gathered from many
machines). Extra columns are used when present: gan_seed (GAN replicates), generator (GENERATORS), protocol,
test2_* (second test set), test_max_pred_share (failed-run check), recall_<class> (per-class gains), and axis
columns: a column named by a config key (it has a dot, e.g. `classifier.real_fraction`, as the sweep's
`sweep.axes` writes) is an axis; a run with the column empty does not depend on that axis. The synthetic set's
quality is QUALITY_FILE beside the table, when there is one.
"""

import collections
import csv
import io
import os

from fer_jax import stats
from fer_jax.infra import io_utils
from fer_jax.infra.errors import UserError

REQUIRED = (
  'regime',
  'multiple',
  'seed',
  'n_real',
  'n_synthetic',
  'test_accuracy',
  'test_macro_f1',
  'val_accuracy',
  'epochs',
  'train_seconds',
)
COLUMNS = REQUIRED + (
  'gan_seed',
  'generator',
  'protocol',
  'stop_reason',
  'steps',
  'best_epoch',
  'val_loss',
  'test_max_pred_share',
  'test_source',
  'test2_source',
  'test2_accuracy',
  'test2_macro_f1',
  'run',
)
FLOATS = (
  'multiple',
  'test_accuracy',
  'test_macro_f1',
  'val_accuracy',
  'train_seconds',
  'val_loss',
  'test_max_pred_share',
  'test2_accuracy',
  'test2_macro_f1',
)
INTS = ('seed', 'n_real', 'n_synthetic', 'epochs', 'steps', 'best_epoch')
REGIMES = ('real', 'synthetic', 'mixed')
# The `generator` column: which synthetic set a run read (fer_jax.sweep). 'gan' is the study, 'oracle' the reference
# (a perfect generator), 'pool' and 'real_identities' the controls that replace one GAN at a time, 'one_stage' the
# option of one conditional GAN in place of the two.
GENERATORS = ('gan', 'oracle', 'pool', 'real_identities', 'one_stage')
QUALITY_FILE = 'synthetic_quality.json'
# A run that predicts one class for this share of the test images learnt nothing usable (6 balanced classes
# give ~1/6 each; a weak but working classifier stays well below this).
ONE_CLASS_SHARE = 0.6


def axis_columns(rows):
  """The axis columns (config keys: names with a dot) that hold a value in some row, in order of appearance."""
  return list(dict.fromkeys(k for r in rows for k, v in r.items() if k and '.' in k and v is not None))


def write_csv(path, rows):
  """rows (dicts) -> results.csv: the contract columns, the optional ones, the axis columns, then
  recall_<class> columns."""
  recall = sorted({k for r in rows for k in r if k.startswith('recall_')})
  columns = COLUMNS + tuple(axis_columns(rows)) + tuple(recall)
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=columns, extrasaction='ignore', lineterminator='\n')
  w.writeheader()
  for r in rows:
    w.writerow({k: _cell(r.get(k)) for k in columns})
  io_utils.write_text(path, buf.getvalue())


def _cell(v):
  if v is None:
    return ''
  return f'{v:.6g}' if isinstance(v, float) else v


def read_csv(path):
  """results.csv -> rows with typed values; a missing column or a bad value stops with one line naming it."""
  if not os.path.isfile(path):
    raise UserError(f'--results={path}: no such file (expected a results.csv written by the sweep)')
  try:
    with open(path, newline='') as f:
      reader = csv.DictReader(f)
      missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
      if missing:
        raise UserError(f'{path}: missing column(s) {", ".join(missing)}; a results table needs {", ".join(REQUIRED)}')
      raw = list(reader)
  except (UnicodeDecodeError, csv.Error) as e:
    raise UserError(f'{path}: not a readable CSV file ({e})') from None
  rows = []
  for line, r in enumerate(raw, 2):
    row = dict(r)
    for k, v in r.items():
      if k is None:
        raise UserError(f'{path}, line {line}: more cells than columns')
      if v in ('', None):
        row[k] = None
        continue
      try:
        if k in FLOATS or k.startswith('recall_'):
          row[k] = float(v)
        elif k in INTS or k == 'gan_seed':
          row[k] = int(float(v))
        elif '.' in k:  # an axis: a number when it reads as one, else the word
          row[k] = _number_or_word(v)
      except ValueError:
        raise UserError(f'{path}, line {line}: column {k} has {v!r}; expected a number') from None
    for k in REQUIRED:
      if row.get(k) is None:
        raise UserError(f'{path}, line {line}: column {k} is empty')
    if row['regime'] not in REGIMES:
      raise UserError(f'{path}, line {line}: regime {row["regime"]!r}; expected one of {", ".join(REGIMES)}')
    if row['regime'] == 'real':
      row['gan_seed'], row['generator'] = stats.NO_GAN, None
    elif row.get('generator') not in (None, *GENERATORS):
      raise UserError(f'{path}, line {line}: generator {row["generator"]!r}; expected one of {", ".join(GENERATORS)}')
    elif row.get('generator') is None:
      row['generator'] = 'gan'  # a table without the column is a GAN study
    rows.append(row)
  if not rows:
    raise UserError(f'{path}: the table has no runs')
  return rows


def _number_or_word(v):
  try:
    return float(v)
  except ValueError:
    return v


def value_text(v):
  """An axis value as the report writes it: a number in its shortest form, else the word."""
  return f'{v:g}' if isinstance(v, float) else str(v)


def read_quality(results_csv):
  """The synthetic sets' quality (QUALITY_FILE beside results_csv), or None when there is none."""
  path = os.path.join(os.path.dirname(os.path.abspath(results_csv)), QUALITY_FILE)
  return io_utils.read_json(path) if os.path.exists(path) else None


# ----------------------------------------------------------------------------------------- the runs
def count_classes(rows):
  """The number of classes: one recall_<class> column each (6, the Ekman emotions, without them)."""
  return len({k for r in rows for k in r if k.startswith('recall_')}) or 6


def failure(row, num_classes):
  """Why a run counts as failed (None if it does not): below chance, or (nearly) one predicted class."""
  if row['test_accuracy'] < 1.0 / num_classes:
    return f'test accuracy {100 * row["test_accuracy"]:.1f}% is below chance ({100 / num_classes:.1f}%)'
  share = row.get('test_max_pred_share')
  if share is not None and share >= ONE_CLASS_SHARE:
    return f'predicts one class for {100 * share:.0f}% of the test images'
  return None


def by_cell(rows, key):
  """{(regime, multiple): {(gan_seed, seed): value}}: the runs' values of column `key`, per regime and k."""
  out = collections.defaultdict(dict)
  for r in rows:
    if r.get(key) is not None:
      out[(r['regime'], r['multiple'])][(r.get('gan_seed'), r['seed'])] = r[key]
  return dict(out)


def in_cell(rows, cell):
  """The rows of one cell ({axis: value}): those with that value, or none, for every axis."""
  return [r for r in rows if all(r.get(k) is None or r[k] == v for k, v in cell.items())]
