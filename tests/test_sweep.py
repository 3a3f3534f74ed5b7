"""The tiny preset's sweep end to end, its resume after a kill, and its refusals."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from configs import default
from fer_jax import sweep
from fer_jax.errors import UserError
from tests.conftest import ROOT, run_module

REPRODUCIBLE = ('regime', 'multiple', 'seed', 'n_real', 'n_synthetic', 'test_accuracy', 'test_macro_f1',
                'val_accuracy', 'epochs', 'test2_accuracy', 'test2_macro_f1', 'run')


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
  for f in ('results.csv', 'results.json', 'report.md', 'accuracy_vs_multiple.png', 'samples/identities.png',
            'samples/expressions.png', 'samples/synthetic_train.png', 'data/preview.png'):
    assert (w / f).exists(), f
  rows = _rows(w / 'results.csv')
  c = default.get_config('tiny')
  assert len(rows) == len(sweep.runs(c)) == 1 + 2 * len(c.sweep.multiples)
  assert {(r['regime'], float(r['multiple'])) for r in rows} == {
      ('real', 0.0), ('synthetic', 0.5), ('synthetic', 1.0), ('mixed', 0.5), ('mixed', 1.0)}
  real = next(r for r in rows if r['regime'] == 'real')
  n_real = int(real['n_real'])
  for r in rows:
    assert 0.0 <= float(r['test_accuracy']) <= 1.0
    assert int(r['n_synthetic']) == round(float(r['multiple']) * n_real)
  results = json.loads((w / 'results.json').read_text())
  assert results['versions']['jax'] and results['versions']['flax']
  assert results['config']['preset'] == 'tiny'
  assert all(r['command'].startswith('python -m experiments.train_classifier') for r in results['rows'])
  report = (w / 'report.md').read_text()
  assert '| real | 0 | 1 |' in report and '## Upper bound' in report and '## Gain of mixed@best' in report
  meta = json.loads(next((w / 'synthetic').rglob('metadata.json')).read_text())
  assert meta['provenance']['identity_gan']['step'] == c.identity_gan.steps
  assert meta['provenance']['expression_gan']['step'] >= 0 and meta['psi'] == c.synthetic.psi


def test_synthetic_set_is_balanced_and_nested(finished):
  from fer_jax.data import sources  # pylint: disable=import-outside-toplevel
  c = default.get_config('tiny')
  folder = os.path.dirname(next((finished / 'synthetic').rglob('dataset_info.json')))
  ds = sources.load(sources.Source('synthetic', folder), 'train', c, str(finished))
  labels = [int(ds[i]['label']) for i in range(len(ds))]
  assert labels[:12] == [0, 1, 2, 3, 4, 5] * 2  # identity-major: every identity gets all 6 emotions
  assert [int(ds[i]['subject']) for i in range(12)] == [0] * 6 + [1] * 6


def _gans_only(finished, w):
  # Reuse the finished data and GAN stages so that the test spends its time on the classifier runs.
  shutil.copytree(finished, w, ignore=shutil.ignore_patterns('runs', 'results.*', 'report.md', 'samples',
                                                             'synthetic', 'sweep_config.json'))
  return [sys.executable, '-m', 'experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={w}',
          '--config.classifier.num_epochs=4', '--config.classifier.patience=10']


def test_killed_sweep_resumes_without_redoing_runs(finished, tmp_path):
  w = tmp_path / 'w'
  cmd = _gans_only(finished, w)
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  second = w / 'runs' / 'synthetic_k0.5_s0' / 'checkpoints' / '2'
  deadline = time.time() + 400
  while not second.exists():
    assert proc.poll() is None and time.time() < deadline, 'sweep ended before it could be killed'
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  first = w / 'runs' / 'real_k0_s0' / 'metrics.json'
  assert first.exists() and not (w / 'results.csv').exists()
  stamp = first.stat().st_mtime_ns
  subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
  assert first.stat().st_mtime_ns == stamp  # the finished run was not redone
  straight = tmp_path / 'straight'
  subprocess.run(_gans_only(finished, straight), cwd=ROOT, check=True, capture_output=True)
  assert _rows(w / 'results.csv') == _rows(straight / 'results.csv')


@pytest.mark.parametrize('override,match', [
    ('--config.sweep.multiples=0,-1', 'not a valid multiple'),
    ("--config.sweep.multiples=('a',)", 'not a valid multiple'),
    ("--config.sweep.regimes=('real','hybrid')", "unknown regime 'hybrid'"),
])
def test_bad_sweep_settings_are_refused(finished, override, match):
  before = (finished / 'results.csv').read_bytes()
  proc = run_module('experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={finished}', override,
                    check=False)
  assert proc.returncode != 0 and match in proc.stderr and 'Traceback' not in proc.stderr
  assert (finished / 'results.csv').read_bytes() == before


def test_changed_config_conflicting_with_results_is_refused(finished):
  before = (finished / 'results.csv').read_bytes()
  proc = run_module('experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={finished}',
                    '--config.classifier.lr=0.01', check=False)
  assert proc.returncode != 0
  assert 'classifier.lr' in proc.stderr and 'fresh --workdir' in proc.stderr
  assert (finished / 'results.csv').read_bytes() == before


def test_run_list_is_overrides():
  c = default.get_config('tiny')
  runs = dict(sweep.runs(c))
  assert runs['mixed_k1_s0'] == {'classifier.regime': 'mixed', 'classifier.multiple': 1.0, 'seed': 0}
  assert sweep.apply_overrides(c, runs['mixed_k1_s0']).classifier.regime == 'mixed'
  c.sweep.multiples = (1, -2)
  with pytest.raises(UserError):
    sweep.runs(c)
