"""The report's plots (matplotlib, no display): accuracy against k, and the gain against each axis's values."""

import itertools

import matplotlib
import numpy as np

from fer_jax.infra import io_utils
import fer_jax.report.table as table

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

ACCURACY_PLOT = 'accuracy_vs_multiple.png'
CONTROL_COLORS = {'pool': 'tab:purple', 'real_identities': 'tab:red', 'one_stage': 'tab:brown'}


def accuracy_vs_multiple(s, rows, path):
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
    for control, c in (s.get('controls') or {}).items():  # their mixed regime: where the gain is lost
      series.append((c['cells'], control, 'mixed', CONTROL_COLORS[control], ':'))
    for cells, generator, regime, color, style in series:
      pts = [c for c in cells if c['regime'] == regime and key in c]
      if not pts:
        continue
      ks = np.array([c['multiple'] for c in pts])
      m = np.array([100 * c[key] for c in pts])
      h = np.array([100 * c[key + '_ci'] if np.isfinite(c[key + '_ci']) else 0.0 for c in pts])
      label = regime + ('' if generator == 'gan' else f' ({generator} faces)')
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
    cell = ', '.join(f'{k} = {table.value_text(v)}' for k, v in (s.get('cell') or {}).items())
    ax.set_title(
      f'test: {name}  ({s["seeds"]} seed(s); dots = runs)' + (f'\ncell: {cell}' if cell else ''), fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  io_utils.save_figure(fig, path, dpi=110)
  plt.close(fig)


def axis_plot_name(key):
  """The file name of axis `key`'s plot (`gain_vs_axis`)."""
  return f'gain_vs_{key}.png'


def plotted_axes(s):
  """The axes that get a gain_vs_KEY.png: those with two values or more (a line through one point says nothing)."""
  axes = s.get('axes') or {}
  return [key for key in axes.get('keys', ()) if len(axes['values'][key]) > 1]


def gain_vs_axis(s, key, path):
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
    ax.set_xticks([pos[v] for v in xs], [table.value_text(v) for v in xs])
    ax.set_xlabel(key)
    ax.set_ylabel('gain of mixed@k over real only (test, points)')
    where = ', '.join(f'{k} = {table.value_text(v)}' for k, v in zip(others, panel))
    ax.set_title('mean and 95% CI over paired seeds' + (f'\n{where}' if where else ''), fontsize=9)
    ax.grid(alpha=0.3)
    if ks:
      ax.legend(fontsize=7)
  fig.tight_layout()
  io_utils.save_figure(fig, path, dpi=110)
  plt.close(fig)
