"""The answer in a few lines, for the end of `make sweep` and of `experiments.report`: the best k, the gain of
mixed@best over real only (or "inconclusive"), where more stops helping, the oracle's share, the realism of the
synthetic faces, and where report.md has the rest."""

import numpy as np

import fer_jax.report.analysis as analysis
import fer_jax.report.markdown as markdown
import fer_jax.report.table as table


def answer_lines(s, quality=None, report_md=None):
  """The summary (`analysis.summarize`), the synthetic sets' quality (`table.read_quality`, optional) and the
  path of report.md (optional) -> a few lines of plain text. The summary may be read back from summary.json."""
  s = _from_json(s)
  units = 'GAN replicates' if s['gan_replicates'] > 1 else 'seeds'
  lines = []
  if s.get('cell'):
    where = ', '.join(f'{k} = {table.value_text(v)}' for k, v in s['cell'].items())
    lines.append(f'answer at {where} (each axis at its first value; report.md has every cell):')
  best, gain = s['best_multiple'], s['gain']
  if best is None:
    lines.append('best k: none (no usable mixed run: none ran, or all failed)')
  else:
    lines.append(f'best k (chosen on validation): {best:g}')
  if gain:
    lines.append(f'gain of mixed@{gain["multiple"]:g} over real only (test): {_gain(gain, units)}')
  elif best is not None:
    lines.append('gain over real only: none (no usable real-only run)')
  lines.append(f'saturation: {_saturation(s["saturation"], best, units)}')
  if s.get('gan_vs_oracle'):
    lines.append(_oracle(s['gan_vs_oracle'], best))
  for name, c in (s.get('controls') or {}).items():
    lines.append(_control(name, c, best))
  if s.get('loss_by_stage'):
    v = _at(s['loss_by_stage'], best)
    lines.append(
      f"of the oracle's gain at mixed@{v['multiple']:g}, the expression GAN loses {_points(v['expression_gan'])} "
      f'and the identity GAN {_points(v["identity_gan"])}'
    )
  realism = _realism(quality or {})
  if realism:
    lines.append(realism)
  if report_md:
    lines.append(f'report: {report_md}')
  return lines


def _gain(g, units):
  text = markdown.difference(g)
  if g['significant']:
    return f'{text}: synthetic data {"helps" if g["mean"] > 0 else "hurts"} here'
  need = g.get('seeds_for_halfwidth_3pts')
  if analysis.within_goal(g):
    more = f'; the interval is within ±3 points: a gain, if any, is at most {100 * g["ci95"][1]:+.1f} points'
  else:
    more = f'; about {need} {units} would give a ±3-point interval' if need else ''
  return f'inconclusive: {text}{more}'


def _saturation(sat, best, units):
  if sat['verdict'] == 'saturated':
    within = f'{100 * sat["margin"]:g} point(s)'
    return f'saturated at k = {sat["multiple"]:g} (the smallest k within {within} of the best, k = {best:g})'
  if sat['verdict'] == 'rising':
    return f'still rising at the largest k tested ({best:g}): try larger k'
  return 'inconclusive' + (f': {markdown.what_would_decide(sat, units)}' if sat.get('seeds_needed') else '')


def _at(per_k, best):
  return next((v for v in per_k if v['multiple'] == best), per_k[0])


def _points(c):
  lo, hi = c['ci95']
  return f'{100 * c["mean"]:+.1f} points' + (f' (95% CI {100 * lo:+.1f} to {100 * hi:+.1f})' if np.isfinite(lo) else '')


def _control(name, c, best):
  if not c['versus_oracle']:
    g = c['gain']
    return f'control {name}: ' + (f'mixed@{g["multiple"]:g} {_points(g)} over real only' if g else 'no usable run')
  v = _at(c['versus_oracle'], best)
  line = f'control {name}, mixed@{v["multiple"]:g}: {_points(v["gain"])} over real only; '
  if v['share']:
    share, (lo, hi) = v['share']['mean'], v['share']['ci95']
    return line + f"{100 * share:.0f}% of the oracle's gain (95% CI {100 * lo:.0f}% to {100 * hi:.0f}%)"
  return line + "its share of the oracle's gain is inconclusive"


def _oracle(versus, best):
  v = _at(versus, best)
  o = v['oracle_gain']
  line = f'oracle (perfect generator), mixed@{v["multiple"]:g}: {_points(o)} over real only; '
  if v['share']:
    share, (lo, hi) = v['share']['mean'], v['share']['ci95']
    return line + f'the GANs reach {100 * share:.0f}% of its gain (95% CI {100 * lo:.0f}% to {100 * hi:.0f}%)'
  return line + "the GANs' share is inconclusive (the oracle's own gain is not distinguishable from zero)"


def _realism(quality):
  reps = {g: q for g, q in sorted((quality.get('replicates') or {}).items()) if q.get('realism_accuracy') is not None}
  if not reps:
    return None
  each = []
  for g, q in reps.items():
    lo, hi = q['realism_ci95']
    name = markdown.set_name(g)
    each.append(f'{name} {100 * q["realism_accuracy"]:.1f}% (95% CI {100 * lo:.0f}% to {100 * hi:.0f}%)')
  return 'realism (a small CNN tells real from synthetic held-out faces; 50% = indistinguishable): ' + ', '.join(each)


def _from_json(x, key=None):
  """summary.json's None for a number JSON cannot hold (nan) back to nan; other None stay."""
  if isinstance(x, dict):
    return {k: _from_json(v, k) for k, v in x.items()}
  if isinstance(x, list):
    return [float('nan') if v is None and key == 'ci95' else _from_json(v) for v in x]
  return float('nan') if x is None and key in ('mean', 'sd', 'p', 'p_holm') else x
