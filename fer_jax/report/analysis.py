"""The analysis: how much synthetic data helps, and from which k more stops helping (summary.json).

The rules (fer_jax.stats has the numbers): the best multiple is chosen on validation accuracy only and its
gain is read on test; gains are paired by seed; "which k beat real only" is Holm-corrected; the saturation
point carries its own uncertainty and is "inconclusive" when the data cannot decide. Failed runs (below
chance, or nearly one predicted class: `table.failure`) are named and left out of every statistic. With axis
columns the study is analysed at every crossing of the axes' values (a cell).
"""

import collections
import itertools

import numpy as np

from fer_jax import stats
import fer_jax.report.table as table

HALF_WIDTH_GOAL = 0.03  # the CI half-width at which the gain reads as an answer (3 points)


def within_goal(gain):
  """True when an inconclusive gain's interval is already within ±HALF_WIDTH_GOAL: then it bounds any gain."""
  lo, hi = gain['ci95']
  return bool(gain.get('seeds_for_halfwidth_3pts')) and np.isfinite(hi) and (hi - lo) / 2 <= HALF_WIDTH_GOAL


def summarize(rows, margin=0.01):
  """Everything the report says, as a JSON-able dict (summary.json).

  The main answer is about the GANs' synthetic set (the first of table.GENERATORS the table has, when it has no
  GAN runs). When the table also has oracle runs (a perfect generator: new faces rendered with exact labels),
  `oracle` holds the same analysis of those and `gan_vs_oracle` what share of the oracle's gain the GANs reach,
  per k. `controls` holds the same for each other generator ('pool': the GAN pool's own faces;
  'real_identities': the expression GAN on people no GAN drew), with its share of the oracle's gain, and
  `loss_by_stage` (with gan, real_identities and oracle runs) how much of the oracle's gain each GAN loses.

  With axis columns, `axes` holds the analysis of every cell (crossing of the axes' values) and the top-level
  answer is the first cell's (each axis at its first value in the table), named in `cell`; `failed_runs` and
  `num_runs` cover the whole table.
  """
  keys = table.axis_columns(rows)
  if not keys:
    return _summarize_study(rows, margin)
  values = {k: list(dict.fromkeys(r[k] for r in rows if r.get(k) is not None)) for k in keys}
  cells = []
  for combo in itertools.product(*(values[k] for k in keys)):
    cell = dict(zip(keys, combo))
    cells.append((cell, _summarize_study(table.in_cell(rows, cell), margin)))
  out = dict(cells[0][1], cell=cells[0][0], num_runs=len(rows))
  gains = {tuple(cell.values()): _gains(table.in_cell(rows, cell)) for cell, _ in cells}
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
  good = [r for r in rows if not table.failure(r, table.count_classes(rows))]
  test = table.by_cell(good, 'test_accuracy')
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


def _summarize_study(rows, margin):
  """summarize() of a table without axes (or of one cell of one)."""
  gens = {r.get('generator') or 'gan' for r in rows if r['regime'] != 'real'}
  primary = next((g for g in table.GENERATORS if g in gens), 'gan')
  of = lambda name: [r for r in rows if r['regime'] == 'real' or (r.get('generator') or 'gan') == name]
  main = of(primary)
  out = _summarize(main, margin)
  out['generator'] = primary
  out['oracle'] = out['gan_vs_oracle'] = out['loss_by_stage'] = None
  out['controls'] = {}
  num_classes = table.count_classes(rows)
  orc_rows = of('oracle') if 'oracle' in gens and primary != 'oracle' else None
  for name in [g for g in table.GENERATORS if g in gens and g != primary]:
    c = _summarize(of(name), margin)
    out['failed_runs'] += [f for f in c['failed_runs'] if f not in out['failed_runs']]
    out['num_runs'] = len(rows)
    c = {k: c[k] for k in ('cells', 'best_multiple', 'gain', 'versus_real', 'saturation')}
    if name == 'oracle':
      out['oracle'] = c
    else:
      out['controls'][name] = dict(c, versus_oracle=_versus_oracle(of(name), orc_rows, num_classes) if orc_rows else [])
  if orc_rows:
    out['gan_vs_oracle'] = [
      {
        'multiple': v['multiple'],
        'gan_gain': v['gain'],
        **{k: v[k] for k in ('oracle_gain', 'share', 'verdict', 'val_share')},
      }
      for v in _versus_oracle(main, orc_rows, num_classes)
    ]
  if primary == 'gan' and orc_rows and 'real_identities' in gens:
    out['loss_by_stage'] = _loss_by_stage(main, of('real_identities'), orc_rows, num_classes)
  return out


def _versus_oracle(rows, oracle_rows, num_classes):
  """Per k of the mixed regime: a generator's and the oracle's gains over real only (paired) and the generator's
  share of the oracle's gain."""
  ok = lambda rs: [r for r in rs if not table.failure(r, num_classes)]
  gen, orc = table.by_cell(ok(rows), 'test_accuracy'), table.by_cell(ok(oracle_rows), 'test_accuracy')
  gen_val, orc_val = table.by_cell(ok(rows), 'val_accuracy'), table.by_cell(ok(oracle_rows), 'val_accuracy')
  real = gen.get(('real', 0.0))
  out = []
  for k in sorted(k for regime, k in orc if regime == 'mixed'):
    cell = ('mixed', k)
    if cell not in gen or not real:
      continue
    g, o = _comparison(gen[cell], real), _comparison(orc[cell], real)
    share = stats.share_of_gain(gen[cell], orc[cell], real)
    decidable = o['significant'] and o['mean'] > 0
    out.append(
      {
        'multiple': k,
        'gain': g,
        'oracle_gain': o,
        'share': share if decidable else None,
        'verdict': 'estimated' if decidable else 'inconclusive',
        'val_share': _val_share(gen_val.get(cell), orc_val.get(cell), gen_val.get(('real', 0.0))),
      }
    )
  return out


def _val_share(gen, orc, real):
  """The share of the oracle's gain on validation accuracy: the number to choose generator variants by (the test
  share is the report's answer and chooses nothing). None where the oracle's validation gain is not above zero."""
  if not gen or not orc or not real:
    return None
  o = _comparison(orc, real)
  return stats.share_of_gain(gen, orc, real) if o['significant'] and o['mean'] > 0 else None


def _loss_by_stage(gan_rows, real_id_rows, oracle_rows, num_classes):
  """Per k of the mixed regime, where the oracle's gain is lost (test accuracy, paired by seed): by the expression
  GAN (oracle - expression GAN on real identities: the same people, the renderer's expressions against the GAN's)
  and by the identity GAN (expression GAN on real identities - both GANs)."""
  ok = lambda rs: [r for r in rs if not table.failure(r, num_classes)]
  gan, rid, orc = (table.by_cell(ok(rs), 'test_accuracy') for rs in (gan_rows, real_id_rows, oracle_rows))
  out = []
  for k in sorted(k for regime, k in orc if regime == 'mixed'):
    cell = ('mixed', k)
    if cell in gan and cell in rid:
      out.append(
        {
          'multiple': k,
          'expression_gan': _comparison(orc[cell], rid[cell]),
          'identity_gan': _comparison(rid[cell], gan[cell]),
        }
      )
  return out


def _summarize(rows, margin):
  """The analysis of one generator's runs with the real-only runs."""
  recall_cols = sorted({k for r in rows for k in r if k.startswith('recall_')})
  num_classes = table.count_classes(rows)
  failed = [
    {'run': r.get('run') or f'{r["regime"]}_k{r["multiple"]:g}_s{r["seed"]}', 'reason': table.failure(r, num_classes)}
    for r in rows
    if table.failure(r, num_classes)
  ]
  good = [r for r in rows if not table.failure(r, num_classes)]
  test, val = table.by_cell(good, 'test_accuracy'), table.by_cell(good, 'val_accuracy')
  test2, f1 = table.by_cell(good, 'test2_accuracy'), table.by_cell(good, 'test_macro_f1')
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
      for regime in table.REGIMES
      if any(r['regime'] == regime for r in rows)
    },
    'stop_reasons': {
      regime: dict(collections.Counter(r.get('stop_reason') or 'unknown' for r in rows if r['regime'] == regime))
      for regime in table.REGIMES
      if any(r['regime'] == regime for r in rows)
    },
    'cells': [],
  }
  for regime, k in sorted(test, key=lambda x: (table.REGIMES.index(x[0]), x[1])):
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
