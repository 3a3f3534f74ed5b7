"""Every `experiments.benchmark --what=...` runs at tiny shapes and prints its one JSON line (the README's commands
must not rot: the expression GAN's once died with KeyError 'aus'), the networks' with their roofline. Speed itself
is not tested here."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

TINY_GAN = ['--conv_dim=8', '--repeat_num=1', '--d_repeat_num=3']


def _bench(*args, workdir=None):
  argv = [sys.executable, '-m', 'experiments.benchmark', '--image_size=32', '--steps=1', *args]
  if workdir:
    argv.append(f'--workdir={workdir}')
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': ROOT}
  proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
  line = json.loads([x for x in proc.stdout.splitlines() if x.startswith('{')][-1])
  for key in ('what', 'batch_size', 'image_size', 'params', 'img_per_s', 'device'):
    assert key in line, (key, line)
  assert line['img_per_s'] > 0 and line['image_size'] == 32
  return line


def _roofline(line):
  """A network's line holds its FLOP rate, the measured matmul rate and their ratio."""
  assert line['gflop_per_s'] > 0 and line['matmul_peak_gflop_per_s'] > 0, line
  assert line['roofline_fraction'] == line['gflop_per_s'] / line['matmul_peak_gflop_per_s']
  return line


def test_classifier():
  line = _roofline(_bench('--what=classifier', '--batch_size=8'))
  assert line['what'] == 'classifier' and line['batch_size'] == 8 and line['params'] > 0


def test_expression_gan_told_either_condition():
  """Told 14 action units (quick's GAN) instead of 7 classes (the paper's), G's input and the critic's head are
  wider: more parameters."""
  told = {
    c: _roofline(_bench('--what=expression_gan', '--batch_size=8', f'--condition={c}', *TINY_GAN))['params']
    for c in ('emotion', 'aus')
  }
  assert told['aus'] > told['emotion'], told


def test_identity_gan():
  line = _roofline(_bench('--what=identity_gan', '--batch_size=8', '--preset=tiny'))
  assert line['what'] == 'identity_gan' and line['preset'] == 'tiny' and line['params_generator'] > 0


def test_render():
  line = _bench('--what=render', '--batch_size=8')
  assert line['what'] == 'render'


def test_input(tmp_path):
  line = _bench('--what=input', '--batch_size=8', '--preset=tiny', workdir=str(tmp_path))
  assert line['what'] == 'input' and line['batch_shape'] == [8, 32, 32, 1] and line['train_examples'] > 0
