"""Any config key as a sweep axis (`sweep.axes`): the crossed run list, what each value re-runs, resume, refusals."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import default
from fer_jax import axes, sweep
from fer_jax.infra.errors import UserError
from tests.conftest import ROOT, data_only, result_rows, run_module, sweep_cmd

AXES = 'classifier.real_fraction=0.5,1;synthetic.psi=0.7,1'


def test_axes_cross_the_run_list_and_share_what_a_value_does_not_change():
  c = default.get_config('tiny')
  c.sweep.axes = AXES
  names = [r.name for r in sweep.runs(c)]
  # 2 real fractions x (1 real + 2 psi x 2 regimes x 2 multiples); real-only runs do not depend on psi.
  assert len(names) == len(set(names)) == 2 * (1 + 2 * 2 * 2)
  assert 'real_k0_s0__classifier.real_fraction=0.5' in names
  assert 'mixed_k0.5_g0_s0__classifier.real_fraction=1__synthetic.psi=0.7' in names
  run = {r.name: r for r in sweep.runs(c)}['mixed_k1_g0_s0__classifier.real_fraction=0.5__synthetic.psi=1']
  assert run.overrides == {
    'classifier.regime': 'mixed',
    'classifier.multiple': 1.0,
    'seed': 0,
    'classifier.real_fraction': 0.5,
    'synthetic.psi': 1.0,
  }
  assert sweep.gan_trainings(sweep.runs(c)) == [(0, 'identity_gan', ()), (0, 'expression_gan', ())]
  assert list(sweep.synthetic_sets(sweep.runs(c))) == ['g0__synthetic.psi=0.7', 'g0__synthetic.psi=1']
  # A GAN key trains that GAN per value and reuses the other; the oracle's runs do not depend on it.
  c.sweep.axes, c.sweep.generators, c.sweep.regimes, c.sweep.multiples = (
    'expression_gan.g_lr=1e-4,2e-4',
    ('gan,oracle',),
    ('mixed',),
    (1,),
  )
  run_list = sweep.runs(c)
  assert [r.name for r in run_list] == [
    'mixed_k1_g0_s0__expression_gan.g_lr=0.0001',
    'mixed_k1_oracle_s0',
    'mixed_k1_g0_s0__expression_gan.g_lr=0.0002',
  ]
  assert sweep.gan_trainings(run_list) == [
    (0, 'identity_gan', ()),
    (0, 'expression_gan', (('expression_gan.g_lr', 0.0001),)),
    (0, 'expression_gan', (('expression_gan.g_lr', 0.0002),)),
  ]
  assert sweep.gan_folder('W', 0, 'expression_gan', (('expression_gan.g_lr', 0.0002),)) == os.path.join(
    'W', 'gan0', 'expression_gan__expression_gan.g_lr=0.0002'
  )
  for text, match in (
    ('classifier.real_fracton=0.5', 'did you mean classifier.real_fraction'),
    ('data.image_size=32,64', 'cannot be an axis'),
    ('classifier.multiple=1,2', 'cannot be an axis'),
    ('classifier.real_fraction=0.5,x', "'x' is not a float"),
    ('classifier.real_fraction=0.5,0.5', 'lists a value twice'),
    ('classifier.real_fraction', 'is not KEY=V1,V2'),
    ('classifier.lr=0.1;classifier.lr=0.2', 'listed twice'),
    ('identity_gan.diffaugment=color/cutout', r'letters, digits, -, _ and \+ only'),
  ):
    bad = default.get_config('tiny')
    bad.sweep.axes = text
    with pytest.raises(UserError, match=match):
      sweep.runs(bad)
  bad = default.get_config('tiny')
  bad.sweep.axes = 'classifier.real_fraction=0.5,1.5'  # every value is checked before anything runs
  with pytest.raises(UserError, match=r'classifier.real_fraction=1.5 must be in \(0, 1\]'):
    sweep.check_settings(bad)
  good = default.get_config('tiny')
  good.sweep.axes = 'identity_gan.diffaugment=color+translation+cutout,translation'  # '+' joins policies
  assert axes.combinations(good) == [
    (('identity_gan.diffaugment', 'color+translation+cutout'),),
    (('identity_gan.diffaugment', 'translation'),),
  ]
  bad.sweep.axes = 'identity_gan.diffaugment=translation,colour'
  with pytest.raises(UserError, match=r"identity_gan.diffaugment='colour'"):
    sweep.check_settings(bad)


def test_two_axes_train_each_stage_once_resume_after_a_kill_and_refuse_a_conflicting_rerun(finished, tmp_path):
  """The tiny sweep crossed with a classifier axis and a synthetic-set axis, on the finished sweep's data: one
  pair of GANs, a synthetic set per psi, a run per crossing; SIGKILLed once runs have begun to finish, then
  rerun. The cell at the config's own values gives the finished sweep's rows."""
  w = tmp_path / 'w'
  data_only(finished, w)
  cmd = sweep_cmd(w, '--config.sweep.regimes=real,mixed', '--config.sweep.multiples=1', f'--config.sweep.axes={AXES}')
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 400
  while not list(w.glob('runs/*/metrics.json')):
    assert proc.poll() is None and time.time() < deadline, 'sweep ended before it could be killed'
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done = sorted(w.glob('runs/*/metrics.json'))
  stamps = [p.stat().st_mtime_ns for p in done]
  subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
  assert [p.stat().st_mtime_ns for p in done] == stamps  # finished runs were not redone

  keys = ('classifier.real_fraction', 'synthetic.psi')
  rows = result_rows(w / 'results.csv', keys)
  expected = 2 * (1 + 2)  # real fractions x (real only + one mixed k at 2 psi)
  assert len(rows) == len({r['run'] for r in rows}) == expected == len(list((w / 'runs').iterdir()))
  assert {(r['regime'], r['classifier.real_fraction'], r['synthetic.psi']) for r in rows} == {
    ('real', '0.5', ''),
    ('real', '1', ''),
    ('mixed', '0.5', '0.7'),
    ('mixed', '0.5', '1'),
    ('mixed', '1', '0.7'),
    ('mixed', '1', '1'),
  }
  # Upstream stages: one identity GAN and one expression GAN (no GAN key among the axes), a set per psi.
  assert sorted(p.name for p in (w / 'gan0').iterdir() if p.is_dir()) == ['expression_gan', 'identity_gan', 'synthetic']
  sets = [p.parent for p in (w / 'gan0' / 'synthetic').rglob('dataset_info.json')]
  psis = sorted(json.loads((d / 'metadata.json').read_text())['psi'] for d in sets)
  assert psis == [0.7, 1.0]
  first = [np.asarray(tfds.builder_from_directory(str(d)).as_data_source('train')[0]['image']) for d in sets]
  assert not np.array_equal(*first)  # another truncation, other faces
  # A smaller real set takes its own share: half the real images, and k x that many synthetic ones.
  n = {r['run']: (int(r['n_real']), int(r['n_synthetic'])) for r in rows}
  full, half = (
    n['mixed_k1_g0_s0__classifier.real_fraction=1__synthetic.psi=0.7'],
    n['mixed_k1_g0_s0__classifier.real_fraction=0.5__synthetic.psi=1'],
  )
  assert half == (round(full[0] / 2), round(full[0] / 2))
  # The config's own values (real_fraction 1, psi 1) are the finished sweep's runs, number for number.
  want = {r['run']: r for r in result_rows(finished / 'results.csv')}
  for name, ref in (
    ('real_k0_s0__classifier.real_fraction=1', 'real_k0_s0'),
    ('mixed_k1_g0_s0__classifier.real_fraction=1__synthetic.psi=1', 'mixed_k1_g0_s0'),
  ):
    got = next(r for r in rows if r['run'] == name)
    assert {k: v for k, v in got.items() if k not in ('run', *keys)} == {
      k: v for k, v in want[ref].items() if k != 'run'
    }, name

  text = (w / 'report.md').read_text()
  assert '### `classifier.real_fraction`' in text and '### `synthetic.psi`' in text
  assert (w / 'gain_vs_classifier.real_fraction.png').exists() and (w / 'gain_vs_synthetic.psi.png').exists()
  commands = [r['command'] for r in json.loads((w / 'results.json').read_text())['rows']]
  assert any('--config.classifier.real_fraction=0.5' in c and '--config.synthetic.psi=1.0' in c for c in commands)

  before = (w / 'results.csv').read_bytes()
  proc = run_module('experiments.sweep', *cmd[3:], '--config.classifier.lr=0.01', check=False)
  assert proc.returncode != 0 and 'classifier.lr' in proc.stderr and 'Traceback' not in proc.stderr
  assert (w / 'results.csv').read_bytes() == before
