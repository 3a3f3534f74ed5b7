"""The tiny preset's sweep end to end, its resume after a kill, and its refusals."""

import json
import os
import random
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import default
from fer_jax import sweep
from fer_jax.infra.errors import UserError
from tests.conftest import ROOT, data_only, result_rows, run_module, sweep_cmd


def test_sweep_writes_every_promised_file(finished):
  w = finished
  for f in (
    'results.csv',
    'results.json',
    'report.md',
    'summary.json',
    'synthetic_quality.json',
    'accuracy_vs_multiple.png',
    'samples/identities.png',
    'samples/expressions.png',
    'samples/synthetic_train.png',
    'data/preview.png',
  ):
    assert (w / f).exists(), f
  rows = result_rows(w / 'results.csv')
  c = default.get_config('tiny')
  assert len(rows) == len(sweep.runs(c)) == 1 + 2 * len(c.sweep.multiples)
  assert {(r['regime'], float(r['multiple'])) for r in rows} == {
    ('real', 0.0),
    ('synthetic', 0.5),
    ('synthetic', 1.0),
    ('mixed', 0.5),
    ('mixed', 1.0),
  }
  base = int(next(r for r in rows if r['regime'] == 'real')['n_real'])
  for r in rows:
    assert r['protocol'] == 'early_stopping'
    assert int(r['n_synthetic']) == round(float(r['multiple']) * base)
    assert int(r['n_real']) == (0 if r['regime'] == 'synthetic' else base)  # synthetic-only uses no real image
    assert r['gan_seed'] == ('' if r['regime'] == 'real' else '0')
  results = json.loads((w / 'results.json').read_text())
  assert results['versions']['jax'] and results['versions']['flax']
  assert results['config']['preset'] == 'tiny'
  assert all(r['command'].startswith('python -m experiments.train_classifier') for r in results['rows'])
  summary = json.loads((w / 'summary.json').read_text())
  assert summary['protocol'] == 'early_stopping' and summary['selected_on'] == 'validation'
  # Three tiny epochs leave most runs at chance: the report must name exactly those as failed.
  failed = {r['run'] for r in rows if float(r['test_accuracy']) < 1 / 6 or float(r['test_max_pred_share']) >= 0.6}
  assert {f['run'] for f in summary['failed_runs']} == failed
  if summary['best_multiple'] is not None:
    assert summary['gain']['multiple'] == summary['best_multiple']
  report = (w / 'report.md').read_text()
  for part in (
    'Best multiple (chosen on validation)',
    'Where more synthetic data stops helping',
    'one GAN training',
    "synthetic set's own quality",
    'How runs ended',
    'The expression GAN against ground truth',
  ):
    assert part in report, part
  assert all(f'`{name}`' in report for name in failed)
  quality = json.loads((w / 'synthetic_quality.json').read_text())['replicates']['0']
  assert 0 <= quality['judge_agreement'] <= 1 and 0 <= quality['realism_accuracy'] <= 1
  truth = quality['expression_gan_ground_truth']
  assert truth == json.loads((w / 'gan0' / 'expression_gan' / 'metrics.json').read_text())['ground_truth']
  assert f'| replicate 0 | {truth["l1"]:.4f} | {truth["l1_do_nothing"]:.4f} |' in report
  # One judge and one identity net for the pool, read by both GANs' metrics and the set's quality.
  trained = sorted(p.name.split('-')[0] for p in (w / 'tfds' / 'instruments').iterdir() if p.is_dir())
  assert trained == ['identity', 'judge'], trained
  ex = json.loads((w / 'gan0' / 'expression_gan' / 'metrics.json').read_text())
  ig = json.loads((w / 'gan0' / 'identity_gan' / 'metrics.json').read_text())
  assert ex['identity_net']['fingerprint'] == ig['feature_net']['fingerprint']
  meta = json.loads(next((w / 'gan0' / 'synthetic').rglob('metadata.json')).read_text())
  assert meta['provenance']['identity_gan']['step'] == c.identity_gan.steps
  assert meta['provenance']['expression_gan']['step'] >= 0 and meta['psi'] == c.synthetic.psi


def test_report_rebuilds_from_the_sweeps_table(finished, tmp_path):
  run_module('experiments.report', f'--results={finished / "results.csv"}', f'--out={tmp_path}')
  for f in ('report.md', 'summary.json'):
    assert (tmp_path / f).read_text() == (finished / f).read_text(), f


def test_synthetic_set_is_balanced_and_nested(finished, tiny):
  """The k = 0.5 set is a prefix of the k = 1 set, and every identity has each of the 6 emotions once."""
  from fer_jax.data import sources  # pylint: disable=import-outside-toplevel

  folder = os.path.dirname(next((finished / 'gan0' / 'synthetic').rglob('dataset_info.json')))
  ds = sources.load(sources.Source('synthetic', folder), 'train', tiny, str(finished))
  labels = np.array([int(ds[i]['label']) for i in range(len(ds))])
  subjects = np.array([int(ds[i]['subject']) for i in range(len(ds))])
  assert len(ds) % 6 == 0
  assert (labels.reshape(-1, 6) == np.arange(6)).all()  # identity-major: all 6 emotions per identity
  assert (subjects.reshape(-1, 6) == np.arange(len(ds) // 6)[:, None]).all()
  # Nested: a set built for fewer identities from the same GANs holds exactly this set's first images.
  smaller = sweep._generate(sweep.gan_config(tiny, 0), str(finished / 'gan0'), len(ds) // 4)  # pylint: disable=protected-access
  small = sources.load(sources.Source('synthetic', smaller), 'train', tiny, str(finished))
  assert 0 < len(small) < len(ds)
  for i in range(len(small)):
    assert int(small[i]['label']) == labels[i]
    np.testing.assert_array_equal(small[i]['image'], ds[i]['image'])


def _kill_when(cmd, path, timeout=400):
  """Starts `cmd` and SIGKILLs it as soon as `path` exists (a checkpoint mid-run)."""
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + timeout
  while not path.exists():
    assert proc.poll() is None and time.time() < deadline, 'sweep ended before it could be killed'
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()


_STAGE_FILES = (  # files only that stage makes while it works
  ('data preparation', 'tfds/procedural_faces/*/incomplete*'),
  ('identity GAN', 'gan0/identity_gan/checkpoints/[0-9]*'),
  ('expression GAN', 'gan0/expression_gan/checkpoints/[0-9]*'),
  ('synthetic set', 'gan0/synthetic/*/*/incomplete*'),
  ('classifier runs', 'runs/*/metrics.json'),
)  # once a run has finished, while others train


def test_killed_in_every_stage_at_random_moments_the_sweep_ends_as_if_never_killed(finished, tmp_path):
  """Fault injection: the sweep is SIGKILLed inside each stage in turn (once this process has written a file
  only that stage makes), a random moment later, and restarted; the last rerun ends with the uninterrupted
  sweep's results, and no killed preparation leaves its folder behind."""
  rng = random.Random(0)
  w = tmp_path / 'w'
  cmd = sweep_cmd(w, '--config.sweep.concurrent_runs=2')
  killed_in = []
  for i in range(len(_STAGE_FILES)):
    seen = {p for _, pattern in _STAGE_FILES for p in w.glob(pattern)}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, stage = time.time() + 400, None
    while proc.poll() is None and stage is None and time.time() < deadline:
      fresh = [name for name, pattern in _STAGE_FILES[i:] if set(w.glob(pattern)) - seen]
      stage = fresh[0] if fresh else None
      time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.5))
    if proc.poll() is None and stage:
      proc.send_signal(signal.SIGKILL)
      killed_in.append(stage)
    proc.wait()
  done = sorted((w / 'runs').glob('*/metrics.json'))
  stamps = [p.stat().st_mtime_ns for p in done]
  # The last rerun trains the remaining runs one at a time: results depend on neither kills nor concurrency.
  subprocess.run(cmd[:-1] + ['--config.sweep.concurrent_runs=1'], cwd=ROOT, check=True, capture_output=True)
  assert done and [p.stat().st_mtime_ns for p in done] == stamps  # finished runs were not redone
  assert len(set(killed_in)) >= 4, killed_in
  assert not list(w.rglob('incomplete*')), 'a killed preparation left its folder behind'
  assert result_rows(w / 'results.csv') == result_rows(finished / 'results.csv')
  for stage in ('identity_gan', 'expression_gan'):
    a, b = (json.loads((d / 'gan0' / stage / 'metrics.json').read_text()) for d in (w, finished))
    assert _untimed(a) == _untimed(b), stage


def _untimed(tree):
  if isinstance(tree, dict):
    return {k: _untimed(v) for k, v in tree.items() if not any(t in k for t in ('second', 'time', 'per_s'))}
  return tree


def test_gan_replicates_add_their_own_gans_sets_and_runs(finished, tmp_path):
  """A second GAN replicate trains its own pair of GANs and synthetic set, reuses every finished run of the
  first, and the report's intervals are then over replicates."""
  w = tmp_path / 'w'
  shutil.copytree(finished, w)
  stamp = (w / 'runs' / 'mixed_k1_g0_s0' / 'metrics.json').stat().st_mtime_ns
  # One mixed k (the largest, so the sets are the full size) keeps the second replicate's runs to one.
  run_module(
    'experiments.sweep',
    '--config=configs/default.py:tiny',
    f'--workdir={w}',
    '--config.sweep.gan_seeds=0,1',
    '--config.sweep.regimes=real,mixed',
    '--config.sweep.multiples=1',
  )
  rows = result_rows(w / 'results.csv')
  assert sorted({r['gan_seed'] for r in rows}) == ['', '0', '1'] and len(rows) == 1 + 2
  assert (w / 'runs' / 'mixed_k1_g0_s0' / 'metrics.json').stat().st_mtime_ns == stamp
  sets = [next((w / f'gan{g}' / 'synthetic').rglob('dataset_info.json')).parent for g in (0, 1)]
  first = [np.asarray(tfds.builder_from_directory(str(d)).as_data_source('train')[0]['image']) for d in sets]
  assert not np.array_equal(*first)  # another GAN pair, another draw
  summary = json.loads((w / 'summary.json').read_text())
  assert summary['gan_replicates'] == 2
  assert '2 GAN replicates' in (w / 'report.md').read_text()


def test_a_smaller_largest_k_scores_the_set_it_reads(finished, tmp_path):
  """The synthetic set is sized for the sweep's largest k: a rerun with a smaller one reads a smaller (nested) set,
  and its quality is that set's, not the cached one of the larger set."""
  w = tmp_path / 'w'
  shutil.copytree(finished, w, ignore=shutil.ignore_patterns('results.*', 'report.md', 'summary.json'))
  before = json.loads((w / 'gan0' / 'synthetic_quality.json').read_text())
  run_module(*sweep_cmd(w, '--config.sweep.regimes=real,mixed', '--config.sweep.multiples=0.5')[2:])
  after = json.loads((w / 'gan0' / 'synthetic_quality.json').read_text())
  assert after['synthetic_set'] != before['synthetic_set'] and os.path.isdir(after['synthetic_set'])
  assert after['n_judged'] == len(tfds.builder_from_directory(after['synthetic_set']).as_data_source('train'))
  assert after['n_judged'] < before['n_judged']
  reported = json.loads((w / 'synthetic_quality.json').read_text())['replicates']['0']
  assert {k: reported[k] for k in after} == after


@pytest.fixture(scope='module')
def oracle_only(finished, tmp_path_factory):
  """A tiny sweep with the oracle set only, on the finished sweep's data."""
  w = tmp_path_factory.mktemp('oracle') / 'w'
  data_only(finished, w)
  run_module(
    'experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={w}', '--config.sweep.generators=oracle'
  )
  return w


def test_oracle_only_sweep_trains_no_gan_and_renders_new_people(oracle_only, tiny):
  w = oracle_only
  assert not list(w.glob('gan*'))  # no GAN trained
  rows = result_rows(w / 'results.csv')
  assert {r['generator'] for r in rows if r['regime'] != 'real'} == {'oracle'} and len(rows) == 5
  folder = next((w / 'oracle' / 'synthetic').rglob('dataset_info.json')).parent
  ds = tfds.builder_from_directory(str(folder)).as_data_source('train')
  labels = np.array([int(ds[i]['label']) for i in range(len(ds))])
  oracle_subjects = {int(ds[i]['subject']) for i in range(len(ds))}
  assert (labels.reshape(-1, 6) == np.arange(6)).all()  # balanced, identity-major like the GAN set
  from fer_jax.data import sources  # pylint: disable=import-outside-toplevel

  tiny.data.data_dir = str(w / 'tfds')
  for split in ('train', 'validation', 'test', 'pool'):
    split_ds = sources.load(sources.Source('procedural', 'a'), split, tiny, str(w))
    assert not oracle_subjects & {int(split_ds[i]['subject']) for i in range(len(split_ds))}, split
  summary = json.loads((w / 'summary.json').read_text())
  assert summary['generator'] == 'oracle' and summary['gan_vs_oracle'] is None
  assert 'oracle' in json.loads((w / 'synthetic_quality.json').read_text())['replicates']


def test_both_generators_resume_after_a_kill(finished, oracle_only, tmp_path):
  """Killed during an oracle run and rerun, a both-generators sweep ends with the rows of the uninterrupted
  GAN-only and oracle-only sweeps (same data, seeds and sets)."""
  w = tmp_path / 'w'
  shutil.copytree(finished, w, ignore=shutil.ignore_patterns('results.*', 'report.md', 'summary.json'))
  cmd = sweep_cmd(w, '--config.sweep.generators=gan,oracle')
  _kill_when(cmd, w / 'runs' / 'mixed_k0.5_oracle_s0' / 'checkpoints' / '2')
  assert not (w / 'runs' / 'mixed_k0.5_oracle_s0' / 'metrics.json').exists()
  subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
  rows = result_rows(w / 'results.csv')
  key = lambda r: r['run']
  oracle = [r for r in result_rows(oracle_only / 'results.csv') if r['generator']]
  expected = result_rows(finished / 'results.csv') + oracle
  assert sorted(rows, key=key) == sorted(expected, key=key)
  assert {r['generator'] for r in rows} == {'', 'gan', 'oracle'} and len(rows) == 1 + 2 * 2 * 2
  summary = json.loads((w / 'summary.json').read_text())
  assert summary['generator'] == 'gan' and summary['oracle'] is not None
  assert 'Perfect-generator control' in (w / 'report.md').read_text()


def test_controls_replace_one_gan_at_a_time(finished, tmp_path, tiny):
  """sweep.generators' controls, beside the GANs' runs of the finished sweep (reused, not retrained): the pool's own
  training faces with their labels, and the expression GAN on real identities (no identity GAN in its set)."""
  w = tmp_path / 'w'
  shutil.copytree(finished, w, ignore=shutil.ignore_patterns('results.*', 'report.md', 'summary.json'))
  proc = run_module(*sweep_cmd(w, '--config.sweep.generators=gan,pool,real_identities')[2:])
  rows = result_rows(w / 'results.csv')
  assert {r['generator'] for r in rows} == {'', 'gan', 'pool', 'real_identities'} and len(rows) == 1 + 3 * 4
  gan_rows = [r for r in rows if r['generator'] in ('', 'gan')]
  assert sorted(gan_rows, key=lambda r: r['run']) == sorted(
    result_rows(finished / 'results.csv'), key=lambda r: r['run']
  )
  assert {r['gan_seed'] for r in rows if r['generator'] == 'real_identities'} == {'0'}

  from fer_jax.data import pool as pool_lib  # pylint: disable=import-outside-toplevel

  tiny.data.data_dir = str(w / 'tfds')
  pool = pool_lib.load_pool(tiny, str(w))
  folder = next((w / 'pool' / 'synthetic').rglob('dataset_info.json')).parent
  ds = tfds.builder_from_directory(str(folder)).as_data_source('train')
  labels = np.array([int(ds[i]['label']) for i in range(len(ds))])
  assert (labels.reshape(-1, 6) == np.arange(6)).all()  # balanced and nested like the GAN set
  train = {pool.images[j].tobytes(): int(pool.labels[j]) for j in pool.train_idx}
  assert all(train.get(np.asarray(ds[i]['image']).tobytes()) == labels[i] for i in range(len(ds)))  # its own labels
  assert len({np.asarray(ds[i]['image']).tobytes() for i in range(len(ds))}) == len(ds)

  folder = next((w / 'gan0' / 'real_identities' / 'synthetic').rglob('dataset_info.json')).parent
  info = tfds.builder_from_directory(str(folder)).info
  provenance = info.metadata['provenance']
  assert 'identity_gan' not in provenance and provenance['identities']['kind'] == 'rendered neutral subjects'
  assert provenance['expression_gan']['workdir'] == str(w / 'gan0' / 'expression_gan')

  summary = json.loads((w / 'summary.json').read_text())
  assert summary['generator'] == 'gan' and set(summary['controls']) == {'pool', 'real_identities'}
  assert '## Where the gain is lost' in (w / 'report.md').read_text()
  assert 'control pool' in proc.stdout + proc.stderr and 'control real_identities' in proc.stdout + proc.stderr
  assert (w / 'samples' / 'synthetic_pool.png').exists() and (w / 'samples' / 'synthetic_realids0.png').exists()
  quality = json.loads((w / 'synthetic_quality.json').read_text())['replicates']
  assert set(quality) == {'0', 'pool', 'realids0'}


def test_one_stage_gan_draws_each_face_in_its_emotion(finished, tmp_path):
  """sweep.generators' one_stage: the identity GAN's trainer conditioned on the pool's 7 classes, trained in
  gan0/one_stage_gan, makes a set without the expression GAN: identity i in each Ekman emotion from one latent,
  balanced and nested like the GAN set."""
  from fer_jax.data import sources  # pylint: disable=import-outside-toplevel

  w = tmp_path / 'w'
  data_only(finished, w)
  config = default.get_config('tiny')
  config.data.data_dir = str(w / 'tfds')
  config.sweep.generators = ('one_stage',)
  run_list = sweep.runs(config)
  assert {r.generator for r in run_list} == {None, 'one_stage'}
  assert 'mixed_k1_onestage0_s0' in {r.name for r in run_list}
  assert sweep.gan_trainings(run_list) == [(0, 'one_stage_gan', ())]  # neither GAN of the two-stage study
  sweep.gan_stage(config, str(w), 0, 'one_stage_gan')
  record = json.loads((w / 'gan0' / 'one_stage_gan' / 'config.json').read_text())
  assert record['identity_gan.num_classes'] == 7 and (w / 'gan0' / 'one_stage_gan' / 'metrics.json').exists()
  assert not (w / 'gan0' / 'identity_gan').exists() and not (w / 'gan0' / 'expression_gan').exists()

  run = next(r for r in run_list if r.generator == 'one_stage')
  n_real = sweep._real_train_size(config, str(w))  # pylint: disable=protected-access
  folder = sweep.synthetic_stage(config, str(w), run, n_real)
  assert folder.startswith(str(w / 'gan0' / 'one_stage' / 'synthetic'))
  ds = sources.load(sources.Source('synthetic', folder), 'train', config, str(w))
  labels = np.array([int(ds[i]['label']) for i in range(len(ds))])
  subjects = np.array([int(ds[i]['subject']) for i in range(len(ds))])
  assert len(ds) >= n_real and (labels.reshape(-1, 6) == np.arange(6)).all()
  assert (subjects.reshape(-1, 6) == np.arange(len(ds) // 6)[:, None]).all()
  images = np.stack([np.asarray(ds[i]['image']) for i in range(len(ds))]).astype(int).reshape(-1, 6, 32, 32, 1)
  assert np.abs(images[:, 0] - images[:, 5]).mean() > 0.5  # the class changes the face ...
  assert (
    np.abs(images[:, 0] - images[::-1, 0]).mean() > np.abs(images[:, 0] - images[:, 5]).mean() / 4
  )  # ... and so does z
  provenance = tfds.builder_from_directory(folder).info.metadata['provenance']
  assert 'expression_gan' not in provenance
  assert provenance['identity_gan']['workdir'] == str(w / 'gan0' / 'one_stage_gan')
  smaller = sweep._generate(
    sweep.gan_config(config, 0),
    str(tmp_path / 'small'),
    len(ds) // 4,
    'one_stage',
    {  # pylint: disable=protected-access
      'one_stage_gan': str(w / 'gan0' / 'one_stage_gan')
    },
  )
  small = sources.load(sources.Source('synthetic', smaller), 'train', config, str(w))
  assert 0 < len(small) < len(ds)
  for i in range(len(small)):
    np.testing.assert_array_equal(small[i]['image'], ds[i]['image'])
  # The generator is told the class: another label, another face; the same label, the same face; none, an error.
  from fer_jax.train import generators, identity_gan  # pylint: disable=import-outside-toplevel

  gen = generators.load_identity(str(w / 'gan0' / 'one_stage_gan'), sweep.stage_config(config, 'one_stage_gan'))
  key = jax.random.PRNGKey(1)
  fear = generators.sample_identities(gen, key, 8, psi=1.0, batch_size=8, labels=2)
  np.testing.assert_array_equal(fear, generators.sample_identities(gen, key, 8, psi=1.0, batch_size=8, labels=[2] * 8))
  assert (
    np.abs(fear.astype(int) - generators.sample_identities(gen, key, 8, psi=1.0, batch_size=8, labels=3)).mean() > 0
  )
  with pytest.raises(ValueError, match='needs labels'):
    generators.sample_identities(gen, key, 8, batch_size=8)
  for bad in (7, -1, [2] * 5):
    with pytest.raises(ValueError, match=r'labels: expected one class or 8 of them, each in 0 \.\. 6'):
      generators.sample_identities(gen, key, 8, batch_size=8, labels=bad)
  # The set holds, in column e, what the generator draws for class e from the set's key (synthetic.seed of replicate
  # 0), identity by identity: the set's labels are the classes G was given.
  c = sweep.gan_config(config, 0)
  drawn = generators.sample_identities(
    gen,
    jax.random.key(int(c.synthetic.seed)),
    len(images),
    float(c.synthetic.psi),
    int(c.synthetic.batch_size),
    labels=4,
  )
  np.testing.assert_array_equal(images[:, 4], drawn)
  assert np.abs(images[:, 3] - drawn).mean() > 0
  with pytest.raises(UserError, match=r'identity_gan.num_classes=3; expected 0 .* or 7'):
    config.identity_gan.num_classes = 3
    identity_gan.check_config(config)
  # The two-stage study needs an unconditional identity GAN: a conditional one for it is refused up front.
  config.sweep.generators = ('gan',)
  config.identity_gan.num_classes = 7
  with pytest.raises(UserError, match=r'identity_gan.num_classes=7: the two-stage study .* one_stage'):
    sweep.check_settings(config)


def test_a_pool_too_small_for_k_is_one_line(finished, tmp_path):
  w = tmp_path / 'w'
  data_only(finished, w)
  proc = run_module(*sweep_cmd(w, '--config.sweep.generators=pool', '--config.sweep.multiples=0.5,5')[2:], check=False)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  assert "sweep.generators 'pool': k = 5 needs" in proc.stderr and 'the largest k it allows is' in proc.stderr
  assert not (w / 'pool' / 'synthetic').exists() or not list((w / 'pool' / 'synthetic').rglob('*.array_record*'))


def test_oracle_refuses_real_datasets(finished):
  proc = run_module(
    'experiments.sweep',
    '--config=configs/default.py:tiny',
    f'--workdir={finished}',
    '--config.sweep.generators=gan,oracle',
    '--config.data.train_sources=fer2013:/nonexistent.csv',
    check=False,
  )
  assert proc.returncode != 0 and "generator 'oracle'" in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.parametrize(
  'override,match',
  [
    ('--config.sweep.multiples=0,-1', 'not a valid multiple'),
    ("--config.sweep.multiples=('a',)", 'not a valid multiple'),
    ("--config.sweep.regimes=('real','hybrid')", "unknown regime 'hybrid'"),
    ('--config.sweep.executor=dask', 'expected one of local, ray, slurm'),
    ('--config.sweep.ray_resources=TPU', 'is not NAME=AMOUNT'),
    ('--config.sweep.axes=identity_gan.num_classes=0,7', 'the conditional GAN is sweep.generators=one_stage'),
  ],
)
def test_bad_sweep_settings_are_refused(finished, override, match):
  before = (finished / 'results.csv').read_bytes()
  proc = run_module(
    'experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={finished}', override, check=False
  )
  assert proc.returncode != 0 and match in proc.stderr and 'Traceback' not in proc.stderr
  assert (finished / 'results.csv').read_bytes() == before


def test_changed_config_conflicting_with_results_is_refused(finished):
  before = (finished / 'results.csv').read_bytes()
  proc = run_module(
    'experiments.sweep',
    '--config=configs/default.py:tiny',
    f'--workdir={finished}',
    '--config.classifier.lr=0.01',
    check=False,
  )
  assert proc.returncode != 0
  assert 'classifier.lr' in proc.stderr and 'fresh --workdir' in proc.stderr
  assert (finished / 'results.csv').read_bytes() == before


def test_run_list_is_overrides():
  c = default.get_config('tiny')
  runs = {r.name: r for r in sweep.runs(c)}
  assert runs['mixed_k1_g0_s0'].overrides == {'classifier.regime': 'mixed', 'classifier.multiple': 1.0, 'seed': 0}
  assert runs['mixed_k1_g0_s0'].gan_seed == 0 and runs['real_k0_s0'].gan_seed is None
  assert sweep.apply_overrides(c, runs['mixed_k1_g0_s0'].overrides).classifier.regime == 'mixed'
  c.sweep.gan_seeds, c.sweep.seeds = (0, 3), (0, 1)
  names = [r.name for r in sweep.runs(c)]
  assert len(names) == 2 * (1 + 2 * 2 * 2) and 'real_k0_s1' in names and 'mixed_k0.5_g3_s1' in names
  assert sweep.gan_config(c, 3).seed == 3 and sweep.gan_config(c, 3).synthetic.seed == c.synthetic.seed + 3
  c.sweep.generators = ('gan,oracle',)  # as the command line gives `--config.sweep.generators=gan,oracle`
  oracle = {r.name: r for r in sweep.runs(c)}['mixed_k1_oracle_s1']
  assert oracle.generator == 'oracle' and oracle.gan_seed is None and sweep.set_key(oracle) == 'oracle'
  for field, value in (
    ('multiples', (1, -2)),
    ('gan_seeds', (0, 0)),
    ('seeds', ()),
    ('margin', 0.0),
    ('generators', ('gan', 'dalle')),
    ('generators', ()),
  ):
    bad = default.get_config('tiny')
    setattr(bad.sweep, field, value)
    with pytest.raises(UserError):
      sweep.runs(bad)
