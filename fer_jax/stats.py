"""The statistics of the study, on plain numbers: intervals, paired gains, Holm, choice on validation, saturation.

A *unit* is one replicate of the experiment: a classifier seed, crossed with a GAN replicate (`gan_seed`) when
there are several. Runs of the same unit share initialisation and data order across regimes, so a gain is a
per-unit paired difference. Real-only runs use no GAN, so one real run of seed s pairs with the runs of every
GAN replicate at seed s. With several GAN replicates, the differences are first averaged within each replicate
and the interval is taken over replicates: the GAN's variability is then part of the interval (with one GAN
replicate it cannot be, and the report says so).

Nothing here looks at a test split to choose: `best_on_validation` chooses from validation accuracy, and the
other functions estimate or test quantities fixed in advance.
"""

import collections
import math

import numpy as np
from scipy import stats as st

ALPHA = 0.05
POWER = 0.8
NO_GAN = None  # the gan_seed key of runs that use no GAN (real only)


def mean_ci(values, alpha=ALPHA):
  """(mean, half-width of the two-sided Student-t CI); the half-width is nan with fewer than 2 values."""
  v = np.asarray(values, np.float64)
  if len(v) == 0:
    return float('nan'), float('nan')
  if len(v) < 2:
    return float(v.mean()), float('nan')
  return float(v.mean()), float(st.t.ppf(1 - alpha / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def _t_summary(mean, se, dof, n, sd, method, alpha):
  if not np.isfinite(se) or dof < 1:
    return {
      'mean': mean,
      'ci95': [float('nan'), float('nan')],
      'p': float('nan'),
      'se': float('nan'),
      'dof': float(dof),
      'n': n,
      'sd': sd,
      'method': method,
    }
  if se == 0:  # every unit gave the same difference: no spread to test against
    p = 1.0 if mean == 0 else 0.0
    return {
      'mean': mean,
      'ci95': [mean, mean],
      'p': p,
      'se': 0.0,
      'dof': float(dof),
      'n': n,
      'sd': sd,
      'method': method,
    }
  half = float(st.t.ppf(1 - alpha / 2, dof) * se)
  p = float(2 * st.t.sf(abs(mean) / se, dof))
  return {
    'mean': mean,
    'ci95': [mean - half, mean + half],
    'p': p,
    'se': float(se),
    'dof': float(dof),
    'n': n,
    'sd': sd,
    'method': method,
  }


def one_sample(diffs, alpha=ALPHA):
  """Student t on differences (the paired test): mean, ci95, two-sided p against 0, se, dof, n, sd."""
  d = np.asarray(diffs, np.float64)
  n = len(d)
  if n == 0:
    return _t_summary(float('nan'), float('nan'), 0, 0, float('nan'), 'paired', alpha)
  sd = float(d.std(ddof=1)) if n > 1 else float('nan')
  return _t_summary(float(d.mean()), sd / math.sqrt(n) if n > 1 else float('nan'), n - 1, n, sd, 'paired', alpha)


def welch(a, b, alpha=ALPHA):
  """Welch's unequal-variance t for mean(a) - mean(b) (runs that share nothing)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  diff = float(a.mean() - b.mean()) if len(a) and len(b) else float('nan')
  if len(a) < 2 or len(b) < 2:
    return _t_summary(diff, float('nan'), 0, min(len(a), len(b)), float('nan'), 'welch', alpha)
  va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
  se = math.sqrt(va + vb)
  dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
  return _t_summary(diff, se, dof, min(len(a), len(b)), float('nan'), 'welch', alpha)


def holm(pvalues):
  """Holm's step-down adjusted p-values (same order as given; nan stays nan and does not count)."""
  p = np.asarray(pvalues, np.float64)
  out = np.full(p.shape, np.nan)
  ok = np.nonzero(np.isfinite(p))[0]
  m = len(ok)
  running = 0.0
  for rank, i in enumerate(ok[np.argsort(p[ok], kind='stable')]):
    running = max(running, min(1.0, (m - rank) * p[i]))
    out[i] = running
  return out.tolist()


# ------------------------------------------------------------------------------------- paired units
def unit_differences(a, b):
  """Per-unit differences a - b, grouped the way the interval must be taken.

  `a` and `b` map (gan_seed, seed) -> value; gan_seed is NO_GAN for runs that use no GAN. Returns the list of
  differences that are independent replicates: per-unit differences with at most one GAN replicate, else the
  mean difference of each GAN replicate. Units present in only one of the two are left out.
  """
  by_gan = collections.defaultdict(list)
  for (g, s), va in a.items():
    vb = b.get((g, s), b.get((NO_GAN, s)))
    if vb is None and g is NO_GAN:  # a is real-only: pair with b's runs of that seed, each GAN replicate
      for (gb, sb), v in b.items():
        if sb == s:
          by_gan[gb].append(va - v)
      continue
    if vb is not None:
      by_gan[g].append(va - vb)
  if len(by_gan) <= 1:
    return [d for ds in by_gan.values() for d in ds]
  return [float(np.mean(ds)) for _, ds in sorted(by_gan.items(), key=lambda x: str(x[0]))]


def compare(a, b, alpha=ALPHA):
  """mean(a) - mean(b) with its CI and p: paired over shared units when there are >= 2, else Welch."""
  diffs = unit_differences(a, b)
  if len(diffs) >= 2:
    return one_sample(diffs, alpha)
  return welch(list(a.values()), list(b.values()), alpha)


def seeds_for_halfwidth(sd, half_width, alpha=ALPHA, max_n=10_000):
  """Smallest number of units whose t-interval half-width is <= half_width at this spread (None: unknown)."""
  if not np.isfinite(sd):
    return None
  if sd == 0:
    return 2
  for n in range(2, max_n + 1):
    if st.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n) <= half_width:
      return n
  return max_n


def _seeds_to_decide(sd, gap, alpha, max_n=10_000):
  """Units for a one-sided t-test at level alpha to detect a true gap with POWER (normal approximation)."""
  if not np.isfinite(sd) or not np.isfinite(gap):
    return None
  if gap <= 0:
    return max_n
  if sd == 0:
    return 2
  z = st.norm.ppf(1 - alpha) + st.norm.ppf(POWER)
  return int(min(max_n, max(2, math.ceil((z * sd / gap) ** 2) + 1)))


# --------------------------------------------------------------------------------------- decisions
def best_on_validation(val_cells):
  """The multiple with the highest mean validation accuracy ({multiple: [values]}); ties go to the smaller."""
  if not val_cells:
    return None
  return max(sorted(val_cells), key=lambda k: (float(np.mean(val_cells[k])), -k))


def saturation(test_cells, best, margin, alpha=ALPHA):
  """Where more synthetic data stops helping, decided with its own uncertainty.

  `test_cells` maps multiple -> {(gan_seed, seed): accuracy}; `best` was chosen on validation. The answer is
  the smallest k whose accuracy is within `margin` of the best's. For every smaller multiple k the gap
  d = acc(best) - acc(k), paired by unit, is tested both ways, one-sided: "within" (d < margin) and "outside"
  (d > margin); the family of these tests is Holm-corrected. The verdict is
    saturated    at the first multiple shown within the margin, every smaller one shown outside it;
    rising       every smaller multiple is shown outside the margin and the best is the largest tested (the
                 curve had not flattened by the largest k);
    inconclusive otherwise, with the number of units (seeds, or GAN replicates) that would decide the first
                 undecided multiple at the spread seen here (None when the spread cannot be estimated).
  """
  ks = sorted(test_cells)
  out = {
    'verdict': 'inconclusive',
    'multiple': None,
    'margin': float(margin),
    'seeds_needed': None,
    'best': best,
    'tests': [],
  }
  if best is None or best not in test_cells or len(ks) < 2:
    return out  # one multiple (or none) cannot show where a curve flattens
  below = [k for k in ks if k < best]
  tests, pvals = [], []
  for k in below:
    d = np.asarray(unit_differences(test_cells[best], test_cells[k]), np.float64)
    n = len(d)
    mean = float(d.mean()) if n else float('nan')
    sd = float(d.std(ddof=1)) if n > 1 else float('nan')
    if n > 1 and sd > 0:
      t_stat = (mean - margin) / (sd / math.sqrt(n))
      p_within, p_outside = float(st.t.cdf(t_stat, n - 1)), float(st.t.sf(t_stat, n - 1))
    elif n > 1:  # no spread: the sign of the gap relative to the margin decides
      p_within, p_outside = float(mean < margin), float(mean > margin)
    else:
      p_within = p_outside = float('nan')
    claim = 'within' if p_within <= p_outside else 'outside'
    tests.append(
      {'multiple': k, 'gap': mean, 'sd': sd, 'n': n, 'p_within': p_within, 'p_outside': p_outside, 'claim': claim}
    )
    pvals.append(min(p_within, p_outside))
  for t, p_adj in zip(tests, holm(pvals)):
    t['p_holm'] = p_adj
    t['status'] = t['claim'] if np.isfinite(p_adj) and p_adj < alpha else 'undecided'
  out['tests'] = tests
  for t in tests:
    if t['status'] == 'within':
      out.update(verdict='saturated', multiple=t['multiple'])
      return out
    if t['status'] == 'undecided':
      out['seeds_needed'] = _seeds_to_decide(t['sd'], abs(t['gap'] - margin), alpha / max(len(tests), 1))
      return out
  # every smaller multiple is outside the margin
  if best == ks[-1]:
    out.update(verdict='rising', multiple=None)
  else:
    out.update(verdict='saturated', multiple=best)
  return out


def share_of_gain(gan, oracle, real, n_boot=4000, seed=0):
  """mean(gan - real) / mean(oracle - real) over the seeds all three share, with a percentile-bootstrap 95% CI
  that resamples seeds (the same resample for both gains, which keeps their pairing). Each argument maps
  (gan_seed, seed) -> accuracy; several GAN replicates are averaged per seed. None without 2 shared seeds."""

  def per_seed(cells):
    by = collections.defaultdict(list)
    for (_, s), v in cells.items():
      by[s].append(v)
    return {s: float(np.mean(v)) for s, v in by.items()}

  g, o, r = per_seed(gan), per_seed(oracle), per_seed(real)
  seeds = sorted(set(g) & set(o) & set(r))
  if len(seeds) < 2:
    return None
  dg = np.array([g[s] - r[s] for s in seeds])
  do = np.array([o[s] - r[s] for s in seeds])
  idx = np.random.default_rng(seed).integers(0, len(seeds), (n_boot, len(seeds)))
  num, den = dg[idx].mean(1), do[idx].mean(1)
  ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
  lo, hi = (
    np.nanpercentile(ratio, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)]) if np.isfinite(ratio).any() else (np.nan, np.nan)
  )
  return {
    'mean': float(dg.mean() / do.mean()) if do.mean() != 0 else float('nan'),
    'ci95': [float(lo), float(hi)],
    'n': len(seeds),
    'method': 'bootstrap over seeds',
  }
