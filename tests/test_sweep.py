"""The tiny preset's sweep end to end, its resume after a kill, and its refusals."""

import csv
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import default
from fer_jax import executors, sweep
from fer_jax.errors import UserError
from tests.conftest import ROOT, run_module

REPRODUCIBLE = (
  'regime',
  'multiple',
  'seed',
  'gan_seed',
  'generator',
  'n_real',
  'n_synthetic',
  'test_accuracy',
  'test_macro_f1',
  'val_accuracy',
  'epochs',
  'test2_accuracy',
  'test2_macro_f1',
  'run',
  'test_max_pred_share',
  'protocol',
)


def _sweep_cmd(workdir, *flags):
  """The tiny sweep's command line in `workdir`, with `flags`."""
  return [sys.executable, '-m', 'experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={workdir}', *flags]


def _rows(path):
  with open(path) as f:
    return [{k: r[k] for k in REPRODUCIBLE} for r in csv.DictReader(f)]


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """One uninterrupted tiny sweep, run as a user would."""
  workdir = tmp_path_factory.mktemp('sweep') / 'w'
  run_module('experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={workdir}')
  return workdir


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
  rows = _rows(w / 'results.csv')
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
  ):
    assert part in report, part
  assert all(f'`{name}`' in report for name in failed)
  quality = json.loads((w / 'synthetic_quality.json').read_text())['replicates']['0']
  assert 0 <= quality['judge_agreement'] <= 1 and 0 <= quality['realism_accuracy'] <= 1
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
  cmd = _sweep_cmd(w, '--config.sweep.concurrent_runs=2')
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
  assert _rows(w / 'results.csv') == _rows(finished / 'results.csv')
  for stage in ('identity_gan', 'expression_gan'):
    a, b = (json.loads((d / 'gan0' / stage / 'metrics.json').read_text()) for d in (w, finished))
    assert _untimed(a) == _untimed(b), stage


def _untimed(tree):
  if isinstance(tree, dict):
    return {k: _untimed(v) for k, v in tree.items() if not any(t in k for t in ('second', 'time', 'per_s'))}
  return tree


@pytest.mark.parametrize('executor', ['local', 'ray', 'slurm'])
def test_a_failing_run_is_named_with_its_log_and_the_others_finish(finished, tmp_path, executor):
  """One run's bad input (a synthetic set that is not there) fails that run alone, named with its log; the
  run next to it finishes and its row is returned, whatever executes the runs."""
  config = default.get_config('tiny').copy_and_resolve_references()
  config.data.data_dir = str(finished / 'tfds')
  config.sweep.executor, config.sweep.slurm.cluster = executor, 'local'
  run_list = [r for r in sweep.runs(config) if r.name in ('real_k0_s0', 'mixed_k1_g0_s0')]
  try:
    rows, failures = sweep.train_runs(
      config, str(tmp_path), run_list, {0: str(tmp_path / 'nonexistent')}, executors.make(config, str(tmp_path))
    )
  finally:
    if executor == 'ray':
      import ray  # pylint: disable=import-outside-toplevel

      ray.shutdown()
  assert [r['run'] for r in rows] == ['real_k0_s0'] and (tmp_path / 'runs' / 'real_k0_s0' / 'metrics.json').exists()
  assert [f.name for f in failures] == ['mixed_k1_g0_s0']
  line = failures[0].line()
  assert '\n' not in line and 'nonexistent' in line and failures[0].log in line
  assert 'Traceback' in open(failures[0].log).read()  # the whole story is in the log
  want = next(r for r in _rows(finished / 'results.csv') if r['run'] == 'real_k0_s0')
  for k in ('test_accuracy', 'val_accuracy', 'epochs', 'n_real'):  # the same run as the sweep's
    assert float(rows[0][k]) == pytest.approx(float(want[k]), abs=1e-6), k


def _free(w):
  """Waits until no process holds a lock under `w` (a killed driver's workers are gone)."""
  deadline = time.time() + 60
  for lock in w.rglob('.lock'):
    with open(lock, 'a') as f:
      while True:
        try:
          fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
          fcntl.flock(f, fcntl.LOCK_UN)
          break
        except BlockingIOError:
          assert time.time() < deadline, f'{lock} still held a minute after the kill'
          time.sleep(0.2)


@pytest.mark.parametrize('executor', ['ray', 'slurm'])
def test_ray_and_slurm_give_the_local_results_after_the_driver_is_killed(finished, tmp_path, executor):
  """The tiny sweep with each stage and run a Ray task (a local Ray instance) or a submitit job (its local
  cluster), the driver SIGKILLed (with what it started) once runs have begun to finish, then rerun: the same
  results.csv as the local sweep, timing aside; the runs that had finished are not redone."""
  w = tmp_path / 'w'
  cmd = _sweep_cmd(w, f'--config.sweep.executor={executor}', '--config.sweep.slurm.cluster=local')
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
  deadline = time.time() + 400
  while not list(w.glob('runs/*/metrics.json')):
    assert proc.poll() is None and time.time() < deadline, 'sweep ended before it could be killed'
    time.sleep(0.05)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  _free(w)
  done = sorted(w.glob('runs/*/metrics.json'))
  stamps = [p.stat().st_mtime_ns for p in done]
  assert len(done) < len(sweep.runs(default.get_config('tiny'))), 'every run had finished before the kill'
  out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
  assert f'executor {executor}' in out.stdout + out.stderr
  assert [p.stat().st_mtime_ns for p in done] == stamps
  assert _rows(w / 'results.csv') == _rows(finished / 'results.csv')
  for name in ('data', 'identity_gan_g0', 'expression_gan_g0', 'synthetic_g0', 'real_k0_s0'):
    assert (w / 'logs' / f'{name}.log').exists(), name  # each stage ran as a job of its own, with its log


def test_four_devices_give_the_one_device_sweep(finished, tmp_path):
  """The sweep on 4 forced CPU devices (GANs and runs data-parallel) against the 1-device sweep: the real run's
  row is identical; the GANs agree to float precision (sums in another order), so the synthetic images differ by
  at most one grey level, and a run trained on them by at most one test image (the tiny runs sit near chance,
  where a prediction is a near tie)."""
  w = tmp_path / 'w'
  run_module(
    'experiments.sweep',
    '--config=configs/default.py:tiny',
    f'--workdir={w}',
    '--config.sweep.regimes=real,mixed',
    '--config.sweep.multiples=1',
    env={'XLA_FLAGS': '--xla_force_host_platform_device_count=4'},
  )
  for stage in ('identity_gan', 'expression_gan'):
    a, b = (json.loads((d / 'gan0' / stage / 'metrics.json').read_text()) for d in (w, finished))
    np.testing.assert_allclose(_numbers(a, 'judged'), _numbers(b, 'judged'), rtol=1e-4, atol=1e-6, err_msg=stage)
  assert json.loads((w / 'gan0' / 'identity_gan' / 'metrics.json').read_text())['devices'] == 4
  images = [_synthetic_images(d) for d in (w, finished)]
  assert images[0].shape == images[1].shape and np.abs(images[0] - images[1]).max() <= 1
  assert (images[0] != images[1]).mean() < 0.05
  want = {r['run']: r for r in _rows(finished / 'results.csv')}
  rows = _rows(w / 'results.csv')
  assert [r['run'] for r in rows] == ['real_k0_s0', 'mixed_k1_g0_s0']
  assert rows[0] == want['real_k0_s0']
  got, ref = rows[1], want['mixed_k1_g0_s0']
  assert {k: got[k] for k in ('n_real', 'n_synthetic', 'regime', 'multiple', 'seed')} == {
    k: ref[k] for k in ('n_real', 'n_synthetic', 'regime', 'multiple', 'seed')
  }
  n_test = 6 * default.get_config('tiny').data.procedural.test_subjects
  for k in ('test_accuracy', 'test2_accuracy', 'val_accuracy'):
    assert abs(float(got[k]) - float(ref[k])) <= 1 / n_test + 1e-6, (k, got[k], ref[k])


def _numbers(tree, skip):
  """The GAN metrics' numbers, timing and judge counts (near-tie votes of a chance-level judge) aside."""
  out = []
  if isinstance(tree, dict):
    for k, v in sorted(tree.items()):
      if not any(t in k for t in ('second', 'time', 'per_s', 'devices', skip)):
        out += _numbers(v, skip)
  elif isinstance(tree, list):
    for v in tree:
      out += _numbers(v, skip)
  elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
    out.append(float(tree))
  return out


def _synthetic_images(w):
  """The images of the largest synthetic set in W/gan0 (another test adds a smaller, nested one)."""
  sets = [tfds.builder_from_directory(str(p.parent)) for p in (w / 'gan0' / 'synthetic').rglob('dataset_info.json')]
  ds = max(sets, key=lambda b: b.info.splits['train'].num_examples).as_data_source('train')
  return np.stack([np.asarray(ds[i]['image']) for i in range(len(ds))]).astype(int)


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
  rows = _rows(w / 'results.csv')
  assert sorted({r['gan_seed'] for r in rows}) == ['', '0', '1'] and len(rows) == 1 + 2
  assert (w / 'runs' / 'mixed_k1_g0_s0' / 'metrics.json').stat().st_mtime_ns == stamp
  sets = [next((w / f'gan{g}' / 'synthetic').rglob('dataset_info.json')).parent for g in (0, 1)]
  first = [np.asarray(tfds.builder_from_directory(str(d)).as_data_source('train')[0]['image']) for d in sets]
  assert not np.array_equal(*first)  # another GAN pair, another draw
  summary = json.loads((w / 'summary.json').read_text())
  assert summary['gan_replicates'] == 2
  assert '2 GAN replicates' in (w / 'report.md').read_text()


def _data_only(finished, w):
  shutil.copytree(
    finished,
    w,
    ignore=shutil.ignore_patterns(
      'gan*', 'runs', 'results.*', 'report.md', 'samples', 'summary.json', 'synthetic_quality.json'
    ),
  )


@pytest.fixture(scope='module')
def oracle_only(finished, tmp_path_factory):
  """A tiny sweep with the oracle set only, on the finished sweep's data."""
  w = tmp_path_factory.mktemp('oracle') / 'w'
  _data_only(finished, w)
  run_module(
    'experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={w}', '--config.sweep.generators=oracle'
  )
  return w


def test_oracle_only_sweep_trains_no_gan_and_renders_new_people(oracle_only, tiny):
  w = oracle_only
  assert not list(w.glob('gan*'))  # no GAN trained
  rows = _rows(w / 'results.csv')
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
  cmd = _sweep_cmd(w, '--config.sweep.generators=gan,oracle')
  _kill_when(cmd, w / 'runs' / 'mixed_k0.5_oracle_s0' / 'checkpoints' / '2')
  assert not (w / 'runs' / 'mixed_k0.5_oracle_s0' / 'metrics.json').exists()
  subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
  rows = _rows(w / 'results.csv')
  key = lambda r: r['run']
  expected = _rows(finished / 'results.csv') + [r for r in _rows(oracle_only / 'results.csv') if r['generator']]
  assert sorted(rows, key=key) == sorted(expected, key=key)
  assert {r['generator'] for r in rows} == {'', 'gan', 'oracle'} and len(rows) == 1 + 2 * 2 * 2
  summary = json.loads((w / 'summary.json').read_text())
  assert summary['generator'] == 'gan' and summary['oracle'] is not None
  assert 'Perfect-generator control' in (w / 'report.md').read_text()


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
