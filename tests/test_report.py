"""The report's statistics against scipy and against simulated studies, and the report rebuilt from a table."""

import csv
import json

import numpy as np
import pytest
from scipy import stats as st

from fer_jax import report, stats
from fer_jax.infra import executors
from fer_jax.infra.errors import UserError
from tests.conftest import run_module

MULTIPLES = (0.5, 1.0, 2.0, 5.0)


def _study(
  rng,
  seeds,
  test_means,
  val_means=None,
  sd_seed=0.03,
  sd_run=0.01,
  gan_seeds=(0,),
  real=0.6,
  real_val=None,
  protocol='early_stopping',
):
  """Rows of a simulated study: accuracy = mean + a per-seed effect shared by all regimes (what pairing
  removes) + per-run noise. test_means / val_means map multiple -> mixed mean."""
  val_means = val_means or test_means
  rows = []
  for s in range(seeds):
    shared = rng.normal(0, sd_seed)

    def noisy(m, shared=shared):
      return float(np.clip(m + shared + rng.normal(0, sd_run), 0.2, 1.0))

    rows.append(
      dict(
        regime='real',
        multiple=0.0,
        seed=s,
        n_real=600,
        n_synthetic=0,
        test_accuracy=noisy(real),
        test_macro_f1=0.5,
        val_accuracy=noisy(real_val or real),
        epochs=20,
        train_seconds=1.0,
        protocol=protocol,
        gan_seed=None,
        run=f'real_k0_s{s}',
      )
    )
    for g in gan_seeds:
      for k in test_means:
        rows.append(
          dict(
            regime='mixed',
            multiple=k,
            seed=s,
            n_real=600,
            n_synthetic=int(600 * k),
            test_accuracy=noisy(test_means[k]),
            test_macro_f1=0.5,
            val_accuracy=noisy(val_means[k]),
            epochs=20,
            train_seconds=1.0,
            protocol=protocol,
            gan_seed=g,
            run=f'mixed_k{k:g}_g{g}_s{s}',
          )
        )
  return rows


def _csv_roundtrip(rows, tmp_path):
  path = tmp_path / 'results.csv'
  report.table.write_csv(path, rows)
  return report.table.read_csv(path)


# ------------------------------------------------------------------------------------ scipy as oracle
def test_mean_ci_is_the_student_t_interval():
  v = [0.61, 0.55, 0.72, 0.66, 0.58]
  m, h = stats.mean_ci(v)
  lo, hi = st.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=st.sem(v))
  assert m == pytest.approx(np.mean(v)) and m - h == pytest.approx(lo) and m + h == pytest.approx(hi)
  assert np.isnan(stats.mean_ci([0.5])[1])


def test_paired_test_is_scipys_ttest_rel():
  a = np.array([0.64, 0.70, 0.58, 0.75, 0.69])
  b = np.array([0.60, 0.69, 0.52, 0.70, 0.69])
  r = stats.compare({(0, s): x for s, x in enumerate(a)}, {(None, s): x for s, x in enumerate(b)})
  ref = st.ttest_rel(a, b)
  lo, hi = ref.confidence_interval(0.95)
  assert r['method'] == 'paired' and r['n'] == 5
  assert r['p'] == pytest.approx(ref.pvalue) and r['ci95'] == pytest.approx([lo, hi])


def test_welch_is_scipys_unequal_variance_test():
  a, b = np.array([0.6, 0.7, 0.65, 0.8]), np.array([0.5, 0.52, 0.55])
  r = stats.welch(a, b)
  ref = st.ttest_ind(a, b, equal_var=False)
  lo, hi = ref.confidence_interval(0.95)
  assert r['p'] == pytest.approx(ref.pvalue) and r['ci95'] == pytest.approx([lo, hi])
  # Runs that share no seed are compared unpaired.
  r2 = stats.compare({(0, s): x for s, x in enumerate(a)}, {(None, s + 10): x for s, x in enumerate(b)})
  assert r2['method'] == 'welch' and r2['p'] == pytest.approx(ref.pvalue)


def test_holm_adjusts_step_down():
  # Hand-computed: sorted p 0.01, 0.02, 0.04 with m = 3 -> 0.03, 0.04, 0.04 (monotone), nan untouched.
  assert stats.holm([0.04, 0.01, float('nan'), 0.02]) == pytest.approx([0.04, 0.03, float('nan'), 0.04], nan_ok=True)


def test_gan_replicates_make_the_interval_over_replicates():
  # Two GAN replicates with very different gains: the interval is over the 2 replicate means (dof 1).
  a = {(g, s): 0.6 + (0.1 if g == 0 else 0.0) + 0.001 * s for g in (0, 1) for s in range(5)}
  b = {(None, s): 0.6 + 0.001 * s for s in range(5)}
  r = stats.compare(a, b)
  ref = st.ttest_1samp([0.1, 0.0], 0.0)
  assert r['n'] == 2 and r['p'] == pytest.approx(ref.pvalue)


def test_degenerate_inputs_do_not_invent_certainty():
  one = stats.compare({(0, 0): 0.7}, {(None, 0): 0.6})
  assert one['mean'] == pytest.approx(0.1) and np.isnan(one['p']) and np.isnan(one['ci95'][0])
  same = stats.compare({(0, s): 0.7 for s in range(3)}, {(None, s): 0.7 for s in range(3)})
  assert same['p'] == 1.0 and same['ci95'] == [0.0, 0.0]


# ---------------------------------------------------------------------------------- simulated studies
def test_null_studies_keep_the_nominal_rate():
  """No true effect anywhere: the best k chosen on validation and Holm keep false gains at the nominal rate
  (the old report, choosing on test, reported significant gains ~4x too often)."""
  rng = np.random.default_rng(0)
  n = 800
  positive = any_holm = 0
  for _ in range(n):
    rows = _study(rng, 5, {k: 0.6 for k in MULTIPLES}, sd_seed=0.02, sd_run=0.02)
    s = report.analysis.summarize(rows)
    positive += s['gain']['significant'] and s['gain']['mean'] > 0
    any_holm += any(v['beats_real'] for v in s['versus_real'])
  # Binomial sd at 2.5% of 800 is 0.55%; allow 3 sd.
  assert positive / n < 0.025 + 0.017
  assert any_holm / n < 0.025 + 0.017


def test_best_multiple_is_chosen_on_validation_not_test():
  rng = np.random.default_rng(1)
  rows = _study(
    rng, 5, test_means={0.5: 0.6, 1.0: 0.6, 2.0: 0.6, 5.0: 0.75}, val_means={0.5: 0.6, 1.0: 0.72, 2.0: 0.6, 5.0: 0.6}
  )
  s = report.analysis.summarize(rows)
  assert s['selected_on'] == 'validation' and s['best_multiple'] == 1.0
  assert s['gain']['multiple'] == 1.0 and abs(s['gain']['mean']) < 0.05  # the test gain at k = 1, not at 5


def test_saturating_curve_many_seeds_finds_the_knee():
  rng = np.random.default_rng(2)
  curve = {0.5: 0.62, 1.0: 0.66, 2.0: 0.70, 5.0: 0.70}
  s = report.analysis.summarize(_study(rng, 30, curve, sd_seed=0.03, sd_run=0.004))
  assert s['saturation']['verdict'] == 'saturated' and s['saturation']['multiple'] == 2.0
  assert s['gain']['significant'] and s['gain']['mean'] > 0.05
  assert [v['beats_real'] for v in s['versus_real']] == [True] * 4


def test_saturating_curve_two_noisy_seeds_is_inconclusive():
  rng = np.random.default_rng(3)
  curve = {0.5: 0.62, 1.0: 0.66, 2.0: 0.70, 5.0: 0.70}
  s = report.analysis.summarize(_study(rng, 2, curve, sd_seed=0.05, sd_run=0.05))
  sat = s['saturation']
  assert sat['verdict'] == 'inconclusive' and sat['multiple'] is None
  assert sat['seeds_needed'] is None or sat['seeds_needed'] > 2


def test_rising_curve_is_called_rising():
  rng = np.random.default_rng(4)
  s = report.analysis.summarize(_study(rng, 20, {0.5: 0.60, 1.0: 0.64, 2.0: 0.68, 5.0: 0.74}, sd_run=0.004))
  assert s['best_multiple'] == 5.0 and s['saturation']['verdict'] == 'rising'


def test_failed_runs_are_named_and_left_out(tmp_path):
  rng = np.random.default_rng(5)
  rows = _study(rng, 3, {1.0: 0.7, 2.0: 0.7})
  bad = next(r for r in rows if r['run'] == 'mixed_k1_g0_s0')
  bad.update(test_accuracy=0.152, test_max_pred_share=0.97)
  rows[1]['test_max_pred_share'] = 0.2
  other = next(r for r in rows if r['run'] == 'mixed_k2_g0_s1')
  other.update(test_accuracy=0.4, test_max_pred_share=0.75)
  rows = _csv_roundtrip(rows, tmp_path)
  s = report.analysis.summarize(rows)
  assert [f['run'] for f in s['failed_runs']] == ['mixed_k1_g0_s0', 'mixed_k2_g0_s1']
  assert 'below chance' in s['failed_runs'][0]['reason'] and 'one class' in s['failed_runs'][1]['reason']
  cell = next(c for c in s['cells'] if c['regime'] == 'mixed' and c['multiple'] == 1.0)
  assert cell['seeds'] == 2
  md = report.markdown.render(s)
  assert '## Failed runs' in md and '`mixed_k1_g0_s0`' in md


# ---------------------------------------------------------------------------------- the files
def test_report_is_rebuilt_identically_from_the_table(tmp_path):
  rng = np.random.default_rng(6)
  rows = _study(rng, 3, {0.5: 0.62, 1.0: 0.66, 2.0: 0.70, 5.0: 0.70})
  for r in rows:
    r.update(
      test2_accuracy=r['test_accuracy'] - 0.1,
      test_source='procedural:a',
      test2_source='procedural:b',
      recall_anger=0.5,
      recall_fear=0.6,
    )
  src = tmp_path / 'study'
  src.mkdir()
  report.table.write_csv(src / 'results.csv', rows)
  (src / report.table.QUALITY_FILE).write_text(
    json.dumps(
      {
        'replicates': {
          '0': {
            'judge_agreement': 0.8,
            'judge_agreement_per_class': {'anger': 0.9, 'fear': 0.7},
            'n_judged': 100,
            'judge_real_holdout_accuracy': 0.9,
            'realism_accuracy': 0.7,
            'realism_ci95': [0.6, 0.8],
            'realism_n_heldout': 60,
          }
        }
      }
    )
  )
  s = report.build(src / 'results.csv', src, margin=0.01)
  run_module('experiments.report', f'--results={src / "results.csv"}', f'--out={tmp_path / "again"}')
  for f in ('report.md', 'summary.json'):
    assert (src / f).read_text() == (tmp_path / 'again' / f).read_text(), f
  assert (tmp_path / 'again' / 'accuracy_vs_multiple.png').stat().st_size > 10_000
  summary = json.loads((src / 'summary.json').read_text())
  assert summary['protocol'] == 'early_stopping' and summary['selected_on'] == 'validation'
  assert summary['best_multiple'] == s['best_multiple']
  assert set(summary['gain']) >= {'multiple', 'mean', 'ci95', 'p', 'significant'}
  assert set(summary['saturation']) >= {'verdict', 'multiple', 'margin', 'seeds_needed'}
  md = (src / 'report.md').read_text()
  for part in (
    "**Protocol**: the paper's",
    'chosen on validation',
    'one GAN training and one synthetic set',
    'Holm',
    'Where more synthetic data stops helping',
    'indistinguishable',
    'procedural:b',
  ):
    assert part in md, part


def test_a_table_with_only_the_contract_columns_is_enough(tmp_path):
  rng = np.random.default_rng(7)
  rows = _study(rng, 2, {1.0: 0.65})
  path = tmp_path / 'results.csv'
  with open(path, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=report.table.REQUIRED, extrasaction='ignore')
    w.writeheader()
    w.writerows(rows)
  s = report.build(path, tmp_path / 'out')
  assert s['protocol'] == 'unknown' and s['best_multiple'] == 1.0
  assert s['saturation']['verdict'] == 'inconclusive'  # one multiple cannot show a knee


@pytest.mark.parametrize(
  'content,match',
  [
    ('regime,multiple\nreal,0\n', 'missing column'),
    (','.join(report.table.REQUIRED) + '\nreal,zero,0,1,0,0.5,0.5,0.5,3,1\n', 'column multiple'),
    (','.join(report.table.REQUIRED) + '\nhybrid,0,0,1,0,0.5,0.5,0.5,3,1\n', "regime 'hybrid'"),
    (','.join(report.table.REQUIRED) + '\n', 'no runs'),
  ],
)
def test_bad_tables_get_one_clear_line(tmp_path, content, match):
  path = tmp_path / 'results.csv'
  path.write_text(content)
  with pytest.raises(UserError, match=match):
    report.build(path, tmp_path / 'out')
  assert not (tmp_path / 'out' / 'report.md').exists()


def test_command_line_errors_are_one_line(tmp_path):
  path = tmp_path / 'results.csv'
  path.write_text('regime,multiple\nreal,0\n')
  for args, match in (([f'--results={path}'], 'missing column'), ([f'--results={tmp_path / "nope.csv"}'], 'nope.csv')):
    proc = run_module('experiments.report', *args, f'--out={tmp_path / "out"}', check=False)
    assert proc.returncode != 0 and match in proc.stderr and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().count('\n') == 0, proc.stderr
  assert not (tmp_path / 'out').exists()


def _with_oracle(rng, seeds, gan_means, oracle_means, sd_run=0.005):
  rows = _study(rng, seeds, gan_means, sd_run=sd_run)
  for r in rows:
    if r['regime'] != 'real':
      r['generator'] = 'gan'
  real = {r['seed']: r['test_accuracy'] for r in rows if r['regime'] == 'real'}
  for s in range(seeds):
    for k, m in oracle_means.items():
      acc = real[s] + (m - 0.6) + rng.normal(0, sd_run)
      rows.append(
        dict(
          regime='mixed',
          multiple=k,
          seed=s,
          n_real=600,
          n_synthetic=int(600 * k),
          test_accuracy=acc,
          test_macro_f1=0.5,
          val_accuracy=acc,
          epochs=20,
          train_seconds=1.0,
          protocol='early_stopping',
          gan_seed=None,
          generator='oracle',
          run=f'mixed_k{k:g}_oracle_s{s}',
        )
      )
  return rows


def test_oracle_control_gives_the_gans_share_of_the_oracles_gain(tmp_path):
  rng = np.random.default_rng(8)
  rows = _csv_roundtrip(_with_oracle(rng, 20, {1.0: 0.62, 2.0: 0.63}, {1.0: 0.64, 2.0: 0.68}), tmp_path)
  s = report.analysis.summarize(rows)
  assert s['generator'] == 'gan' and s['best_multiple'] in (1.0, 2.0)
  assert {c['regime'] for c in s['cells']} == {'real', 'mixed'}  # the oracle's runs stay out of the main answer
  shares = {v['multiple']: v for v in s['gan_vs_oracle']}
  for k, true in ((1.0, 0.5), (2.0, 0.375)):
    v = shares[k]
    assert v['verdict'] == 'estimated'
    lo, hi = v['share']['ci95']
    assert lo < true < hi and abs(v['share']['mean'] - true) < 0.15
  assert 'Perfect-generator control' in report.markdown.render(s)
  # An oracle that does not help makes the share undecidable, not a number.
  flat = report.analysis.summarize(_with_oracle(rng, 10, {1.0: 0.62}, {1.0: 0.60}))
  assert flat['gan_vs_oracle'][0]['verdict'] == 'inconclusive' and flat['gan_vs_oracle'][0]['share'] is None
  assert 'inconclusive' in report.markdown.render(flat)


def _with_controls(rng, seeds, means, sd_run=0.004):
  """A study with gan, oracle, pool and real_identities runs at k = 1: `means` = {generator: mixed accuracy}
  (real only at 0.6)."""
  rows = _with_oracle(rng, seeds, {1.0: means['gan']}, {1.0: means['oracle']}, sd_run=sd_run)
  real = {r['seed']: r['test_accuracy'] for r in rows if r['regime'] == 'real'}
  for name, gan_seed in (('pool', None), ('real_identities', 0)):
    for s in range(seeds):
      acc = real[s] + (means[name] - 0.6) + rng.normal(0, sd_run)
      row = next(r for r in rows if r.get('generator') == 'oracle' and r['seed'] == s)
      rows.append(dict(row, generator=name, gan_seed=gan_seed, test_accuracy=acc, val_accuracy=acc, run=f'{name}_s{s}'))
  return rows


def test_controls_give_their_share_of_the_oracles_gain_and_where_it_is_lost(tmp_path):
  rng = np.random.default_rng(3)
  means = {'gan': 0.61, 'oracle': 0.68, 'pool': 0.66, 'real_identities': 0.64}
  rows = _with_controls(rng, 20, means)
  # On validation the pool reaches half the oracle's gain (on test three quarters): the share to choose by is read
  # from val_accuracy alone.
  val = {(r['generator'] if r['regime'] != 'real' else 'real', r['seed']): r['val_accuracy'] for r in rows}
  for r in rows:
    if r.get('generator') == 'pool':
      r['val_accuracy'] = val[('real', r['seed'])] + 0.5 * (val[('oracle', r['seed'])] - val[('real', r['seed'])])
  rows = _csv_roundtrip(rows, tmp_path)
  s = report.analysis.summarize(rows)
  assert s['generator'] == 'gan' and {c['regime'] for c in s['cells']} == {'real', 'mixed'}
  assert set(s['controls']) == {'pool', 'real_identities'}
  for name, true, true_val in (('pool', 0.75, 0.5), ('real_identities', 0.5, 0.5)):
    (v,) = s['controls'][name]['versus_oracle']
    lo, hi = v['share']['ci95']
    assert v['verdict'] == 'estimated' and lo < true < hi and abs(v['share']['mean'] - true) < 0.1, (name, v)
    assert abs(v['gain']['mean'] - (means[name] - 0.6)) < 0.005
    assert abs(v['val_share']['mean'] - true_val) < 0.1, (name, v['val_share'])
  (loss,) = s['loss_by_stage']
  assert abs(loss['expression_gan']['mean'] - 0.04) < 0.005 and loss['expression_gan']['significant']
  assert abs(loss['identity_gan']['mean'] - 0.03) < 0.005 and loss['identity_gan']['significant']
  md = report.markdown.render(s)
  assert '## Where the gain is lost' in md and '| 1 | pool | +6.' in md and 'lost by the expression GAN' in md
  pool_row = next(line for line in md.splitlines() if line.startswith('| 1 | pool |'))
  assert pool_row.split('|')[5].strip().startswith('50%'), pool_row
  (gan,) = s['gan_vs_oracle']  # the GANs' own row of the same table
  assert abs(gan['val_share']['mean'] - 0.125) < 0.1, gan['val_share']
  lines = report.answer.answer_lines(s, {}, 'report.md')
  assert any(line.startswith('control pool, mixed@1: +6.') and "of the oracle's gain" in line for line in lines), lines
  assert any('the expression GAN loses +4.' in line for line in lines), lines
  # Without the oracle: each control's own gain, and no loss by stage.
  no_oracle = report.analysis.summarize([r for r in rows if r.get('generator') != 'oracle'])
  assert no_oracle['loss_by_stage'] is None and no_oracle['controls']['pool']['versus_oracle'] == []
  assert '(no usable oracle run at this k)' not in report.markdown.render(no_oracle)
  assert 'no usable oracle run at this k' in report.markdown.render(no_oracle)


def test_share_of_gain_pairs_seeds_and_bootstraps():
  gan = {(0, s): 0.6 + 0.02 + 0.001 * s for s in range(6)}
  orc = {(None, s): 0.6 + 0.04 + 0.001 * s for s in range(6)}
  real = {(None, s): 0.6 + 0.001 * s for s in range(6)}
  r = stats.share_of_gain(gan, orc, real)
  assert r['mean'] == pytest.approx(0.5) and r['ci95'] == pytest.approx([0.5, 0.5]) and r['n'] == 6
  assert stats.share_of_gain({(0, 0): 0.6}, {(None, 0): 0.7}, {(None, 0): 0.5}) is None


def test_axes_are_analysed_per_value_from_the_table_alone(tmp_path):
  """Two axes as the sweep writes them (real-only runs have no synthetic.psi: they count at both values): the
  simulated gain is +10 points with a quarter of the real data and none with all of it, whatever psi; the report
  finds exactly that per cell, and `experiments.report` rebuilds it from results.csv."""
  rng = np.random.default_rng(3)
  rows = []
  for fraction, gain in ((0.25, 0.10), (1.0, 0.0)):
    study = _study(rng, 8, {1.0: 0.6 + gain, 5.0: 0.6 + gain}, sd_seed=0.02, sd_run=0.005)
    for r in study:
      r['classifier.real_fraction'] = fraction
      r['run'] += f'__classifier.real_fraction={fraction:g}'
    rows += [r for r in study if r['regime'] == 'real']
    for psi in ('0.7', '1'):  # words in the table, as a hand-edited one may have them
      rows += [
        dict(r, **{'synthetic.psi': psi, 'run': r['run'] + f'__psi={psi}'}) for r in study if r['regime'] != 'real'
      ]
  path = tmp_path / 'results.csv'
  report.table.write_csv(path, rows)
  header = path.read_text().splitlines()[0].split(',')
  assert 'classifier.real_fraction' in header and 'synthetic.psi' in header
  assert all(r['synthetic.psi'] is None for r in report.table.read_csv(path) if r['regime'] == 'real')
  s = report.build(str(path), str(tmp_path / 'out'))
  cells = {(c['values']['classifier.real_fraction'], c['values']['synthetic.psi']): c for c in s['axes']['cells']}
  assert sorted(cells) == [(0.25, 0.7), (0.25, 1.0), (1.0, 0.7), (1.0, 1.0)]
  for (fraction, _), c in cells.items():
    assert c['num_runs'] == 8 * 3  # 8 real-only runs shared by both psi values, 8 seeds x 2 k of their own
    if fraction == 0.25:
      assert c['gain']['significant'] and c['gain']['mean'] == pytest.approx(0.10, abs=0.02)
    else:
      assert not c['gain']['significant'] and abs(c['gain']['mean']) < 0.02
  # The gain itself depends on the real fraction (10 points less with all the real data), paired by seed.
  diffs = [d for d in s['axes']['differences'] if d['key'] == 'classifier.real_fraction']
  assert len(diffs) == 2 * 2 and all(
    d['versus'] == 0.25 and d['values']['classifier.real_fraction'] == 1.0 for d in diffs
  )
  assert all(d['significant'] and d['mean'] == pytest.approx(-0.10, abs=0.02) for d in diffs)
  assert s['cell'] == {'classifier.real_fraction': 0.25, 'synthetic.psi': 0.7} and s['num_runs'] == len(rows)
  assert s['gain'] == cells[(0.25, 0.7)]['gain']  # the top-level answer is the first cell's, named
  text = (tmp_path / 'out' / 'report.md').read_text()
  assert '### `classifier.real_fraction`' in text and '### `synthetic.psi`' in text
  assert 'Does the gain depend on `classifier.real_fraction`?' in text
  assert 'The sections below are for one cell' in text
  for key in ('classifier.real_fraction', 'synthetic.psi'):
    assert (tmp_path / 'out' / f'gain_vs_{key}.png').stat().st_size > 10_000
  run_module('experiments.report', f'--results={path}', f'--out={tmp_path / "again"}')
  assert (tmp_path / 'again' / 'report.md').read_text() == text
  # An axis with one value in the table (one psi of the two) is a column, not a plot: a line through one point.
  one = [r for r in rows if r.get('synthetic.psi') in (None, '1')]
  report.table.write_csv(tmp_path / 'one.csv', one)
  s = report.build(str(tmp_path / 'one.csv'), str(tmp_path / 'one'))
  assert s['axes']['values']['synthetic.psi'] == [1.0]
  assert not (tmp_path / 'one' / 'gain_vs_synthetic.psi.png').exists()
  assert (tmp_path / 'one' / 'gain_vs_classifier.real_fraction.png').exists()
  text = (tmp_path / 'one' / 'report.md').read_text()
  assert '`gain_vs_synthetic.psi.png`' not in text and '`gain_vs_classifier.real_fraction.png`' in text


# ------------------------------------------------------------------------- failures and the answer
def test_build_names_the_runs_that_did_not_finish(tmp_path):
  """The sweep hands build() the runs that failed: report.md ends with their section (as the sweep wrote it when
  it appended the section itself), and nothing else in it changes."""
  rng = np.random.default_rng(5)
  path = tmp_path / 'results.csv'
  report.table.write_csv(path, _study(rng, 3, {1.0: 0.65}))
  report.build(path, tmp_path / 'plain')
  failures = [
    executors.Failure('mixed_k5_g0_s2', 'ValueError: boom', 'logs/mixed_k5_g0_s2.log'),
    executors.Failure('real_k0_s3', 'killed', 'logs/real_k0_s3.log'),
  ]
  s = report.build(path, tmp_path / 'out', failures=failures)
  plain = (tmp_path / 'plain' / 'report.md').read_text()
  text = (tmp_path / 'out' / 'report.md').read_text()
  assert 'did not finish' not in plain
  assert text == (
    f'{plain.rstrip()}\n\n## Runs that did not finish (not in results.csv; rerun the sweep to retry them)\n\n'
    '- `mixed_k5_g0_s2`: ValueError: boom (log: `logs/mixed_k5_g0_s2.log`)\n'
    '- `real_k0_s3`: killed (log: `logs/real_k0_s3.log`)\n'
  )
  # The summary does not depend on the failures (they are not in the table).
  assert (tmp_path / 'out' / 'summary.json').read_text() == (tmp_path / 'plain' / 'summary.json').read_text()
  assert s['num_runs'] == 3 * 2


def _quality(realism, lo, hi):
  return {'replicates': {'0': {'realism_accuracy': realism, 'realism_ci95': [lo, hi]}}}


def test_answer_lines_give_a_conclusive_answer(tmp_path):
  rng = np.random.default_rng(6)
  rows = _with_oracle(rng, 20, {1.0: 0.66, 2.0: 0.70, 5.0: 0.70}, {1.0: 0.68, 2.0: 0.74, 5.0: 0.74}, sd_run=0.004)
  path = tmp_path / 'results.csv'
  report.table.write_csv(path, rows)
  s = report.build(path, tmp_path / 'out')
  g = s['gain']
  assert g['significant'] and g['mean'] > 0.05 and s['saturation']['verdict'] == 'saturated'
  lines = report.answer.answer_lines(s, _quality(0.992, 0.98, 1.0), 'runs/quick/report.md')
  text = '\n'.join(lines)
  best = s['best_multiple']
  lo, hi = g['ci95']
  assert lines[0] == f'best k (chosen on validation): {best:g}'
  assert f'gain of mixed@{best:g} over real only (test): {100 * g["mean"]:+.1f} points' in text
  assert f'95% CI {100 * lo:+.1f} to {100 * hi:+.1f}, p = {g["p"]:.3g}' in text and 'synthetic data helps here' in text
  assert 'inconclusive' not in text
  assert f'saturation: saturated at k = {s["saturation"]["multiple"]:g}' in text
  v = next(v for v in s['gan_vs_oracle'] if v['multiple'] == best)
  assert v['share'] and f'the GANs reach {100 * v["share"]["mean"]:.0f}% of its gain' in text
  assert 'realism' in text and 'GAN replicate 0 99.2% (95% CI 98% to 100%)' in text
  assert lines[-1] == 'report: runs/quick/report.md' and len(lines) == 6
  # The same lines from summary.json (NaN written as null) and from experiments.report's output.
  saved = json.loads((tmp_path / 'out' / 'summary.json').read_text())
  assert report.answer.answer_lines(saved, _quality(0.992, 0.98, 1.0), 'runs/quick/report.md') == lines
  proc = run_module('experiments.report', f'--results={path}', f'--out={tmp_path / "again"}')
  printed = proc.stdout.strip().splitlines()
  assert printed == lines[:-2] + [f'report: {tmp_path / "again" / "report.md"}']  # no quality file beside it


def test_answer_lines_say_inconclusive_and_how_many_seeds_would_decide():
  rng = np.random.default_rng(4)  # no gain, 3 noisy seeds; the best k (validation) is not the smallest
  s = report.analysis.summarize(_study(rng, 3, {1.0: 0.61, 2.0: 0.60, 5.0: 0.61}, sd_seed=0.02, sd_run=0.05))
  g, sat = s['gain'], s['saturation']
  assert not g['significant'] and g['seeds_for_halfwidth_3pts'] > 3
  assert sat['verdict'] == 'inconclusive' and sat['seeds_needed'] > 3
  lines = report.answer.answer_lines(s)
  text = '\n'.join(lines)
  assert f'over real only (test): inconclusive: {100 * g["mean"]:+.1f} points' in text
  assert f'about {g["seeds_for_halfwidth_3pts"]} seeds would give a ±3-point interval' in text
  assert f'saturation: inconclusive: about {sat["seeds_needed"]} seeds would decide it' in text
  assert 'helps' not in text and 'hurts' not in text and 'report:' not in text and 'realism' not in text
  assert len(lines) == 3
  # A gap at the margin itself needs thousands of seeds: said as such, with the gap, not as a plan.
  at_margin = dict(sat, seeds_needed=7575, tests=[dict(sat['tests'][0], status='undecided', gap=0.0101)])
  said = report.answer.answer_lines(dict(s, saturation=at_margin))[2]
  k = sat['tests'][0]['multiple']
  assert said == (
    f'saturation: inconclusive: more than 1000 seeds would be needed to decide it: the gap of k = {k:g} to the best '
    '(+1.0 points) is about the margin itself (1 point(s); `sweep.margin` sets it)'
  )
