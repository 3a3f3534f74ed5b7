import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax.infra.errors import UserError
from fer_jax.models import layers
from fer_jax.models.classifier import PaperCNN
from fer_jax.train import classifier
from tests.conftest import ROOT, run_module, run_processes


def test_paper_cnn_has_the_papers_parameter_count():
  model = PaperCNN(num_classes=6, conv_impl='xla')
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 1))))
  assert layers.count_params(shapes) == 4_966_022


def test_one_run_end_to_end(tiny, tmp_path):
  result = classifier.train_and_evaluate(tiny, str(tmp_path))
  saved = json.loads((tmp_path / 'metrics.json').read_text())
  for key in ('test_accuracy', 'test_macro_f1', 'val_accuracy', 'epochs', 'train_seconds', 'tests'):
    assert key in saved
  assert set(saved['tests']) == {'procedural:a', 'procedural:b'}
  t = saved['tests']['procedural:a']
  assert 0 <= t['accuracy'] <= 1 and len(t['per_class_recall']) == 6
  assert np.sum(t['confusion']) == t['n'] == 4 * 6  # tiny: 4 test subjects x 6 emotions
  assert saved['test_accuracy'] == t['accuracy'] == result['test_accuracy']
  assert 1 <= saved['epochs'] <= tiny.classifier.num_epochs
  assert (tmp_path / 'confusion.png').exists()
  assert any(f.startswith('events') for f in os.listdir(tmp_path / 'tensorboard'))
  # Rerunning a finished run trains nothing more and gives the same results.
  again = classifier.train_and_evaluate(tiny, str(tmp_path))
  assert again['test_accuracy'] == result['test_accuracy'] and again['epochs'] == result['epochs']


def test_the_cnn_learns_above_chance_and_is_not_one_class(tiny, tmp_path):
  """30 tiny epochs (~90 Adam steps on 48 images): standardised inputs leave the ln(6) plateau early, so the
  run is well above chance (1/6) on the 24 test faces and predicts more than one class (measured: 0.58)."""
  tiny.classifier.num_epochs, tiny.classifier.patience = 30, 30
  r = classifier.train_and_evaluate(tiny, str(tmp_path))
  assert r['test_accuracy'] >= 0.375, r['test_accuracy']  # >= 9 of 24; P(>= 9 | chance) ~ 1%
  assert r['test_max_pred_share'] < 0.5 and r['stop_reason'] == 'epoch_cap' and r['protocol'] == 'early_stopping'
  assert r['history'][-1]['train_loss'] < np.log(6) - 0.3


def _concat_run_at_k1(tiny, tmp_path):
  """A one-epoch mixed run at k = 1 under the paper's concat; `tiny` stays set up for more such runs."""
  tiny.classifier.regime, tiny.classifier.multiple = 'mixed', 1.0
  tiny.classifier.synthetic_source = 'procedural:b'  # another domain's faces standing in for a synthetic set
  tiny.classifier.num_epochs = tiny.classifier.patience = 1
  return classifier.train_and_evaluate(tiny, str(tmp_path / 'concat'))


def test_batch_fraction_mixing_keeps_the_run_length_of_real_only(tiny, tmp_path):
  """classifier.mix = batch_fraction: a mixed run at k = 1 takes as many steps per epoch as one on the real
  set alone (its batches are part synthetic), where concat takes twice as many."""
  concat = _concat_run_at_k1(tiny, tmp_path)
  tiny.classifier.mix, tiny.classifier.synthetic_fraction = 'batch_fraction', 0.25
  mixed = classifier.train_and_evaluate(tiny, str(tmp_path / 'fraction'))
  n_real, batch = mixed['n_real'], mixed['batch_size']
  assert mixed['mix'] == 'batch_fraction' and concat['mix'] == 'concat' and mixed['n_synthetic'] == n_real
  assert mixed['steps'] == n_real // (batch - round(0.25 * batch))
  assert concat['steps'] == 2 * n_real // batch
  tiny.classifier.synthetic_fraction = 1.0
  with pytest.raises(UserError, match='synthetic_fraction=1.0'):
    classifier.train_and_evaluate(tiny, str(tmp_path / 'bad'))


def test_weighted_mixing_is_concat_with_lighter_synthetic_rows(tiny, tmp_path):
  """classifier.mix = weighted trains on concat's set in concat's order: at synthetic_weight 1 it is concat to the
  last bit; at 0.25 the synthetic rows' share of the loss shrinks and the run learns otherwise."""
  concat = _concat_run_at_k1(tiny, tmp_path)
  tiny.classifier.mix, tiny.classifier.synthetic_weight = 'weighted', 1.0
  one = classifier.train_and_evaluate(tiny, str(tmp_path / 'one'))
  assert one['history'] == concat['history'] and one['tests'] == concat['tests']
  assert one['mix'] == 'weighted' and one['synthetic_weight'] == 1.0 and one['steps'] == concat['steps']
  tiny.classifier.synthetic_weight = 0.25
  light = classifier.train_and_evaluate(tiny, str(tmp_path / 'light'))
  assert light['steps'] == concat['steps'] and light['history'][0]['train_loss'] != concat['history'][0]['train_loss']
  tiny.classifier.synthetic_weight = -1.0
  with pytest.raises(UserError, match='synthetic_weight=-1.0'):
    classifier.train_and_evaluate(tiny, str(tmp_path / 'bad'))


def test_preprocess_standardises_each_image():
  images = np.stack([np.full((8, 8, 1), 200, np.uint8), np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 3])
  x = np.asarray(classifier.preprocess(jnp.asarray(images)))
  assert np.abs(x[0]).max() < 1e-3  # a flat image maps to zeros, not to a division by zero
  assert abs(x[1].mean()) < 1e-5 and abs(x[1].std() - 1) < 1e-4


def _no_metrics(tmp_path):
  return not (tmp_path / 'metrics.json').exists()


def test_empty_training_source_is_clear(tiny, tmp_path):
  tiny.classifier.real_fraction = 0.001
  with pytest.raises(UserError, match='real training split is empty'):
    classifier.train_and_evaluate(tiny, str(tmp_path))
  assert _no_metrics(tmp_path)


def test_missing_class_is_clear(tiny, tmp_path):
  tiny.classifier.real_fraction = 0.05  # 2 of 48 images: most classes are absent
  with pytest.raises(UserError, match='has no examples'):
    classifier.train_and_evaluate(tiny, str(tmp_path))
  assert _no_metrics(tmp_path)


def test_label_outside_the_classes_is_clear(tiny, tmp_path):
  tiny.data.train_sources = 'procedural:a@pool'  # the pool has neutral faces
  with pytest.raises(UserError, match="'neutral' is outside"):
    classifier.train_and_evaluate(tiny, str(tmp_path))
  assert _no_metrics(tmp_path)


@pytest.mark.parametrize(
  'field,value,match',
  [
    ('data.train_sources', 'nosuch:/x', "unknown source kind 'nosuch'"),
    ('classifier.regime', 'both', "regime='both' is unknown"),
    ('classifier.multiple', -1.0, 'must be a finite number >= 0'),
    ('classifier.conv_impl', 'im2col', "conv_impl='im2col'; expected one of cpu, xla"),
    ('classifier.dtype', 'float16', "dtype='float16'; expected float32 or bfloat16"),
  ],
)
def test_bad_run_settings_are_clear(tiny, tmp_path, field, value, match):
  section, key = field.split('.')
  setattr(tiny[section], key, value)
  with pytest.raises(UserError, match=match):
    classifier.train_and_evaluate(tiny, str(tmp_path))
  assert _no_metrics(tmp_path)


def _cli(workdir, data_dir, *extra):
  return [
    '--config=configs/default.py:tiny',
    f'--workdir={workdir}',
    f'--config.data.data_dir={data_dir}',
    '--config.classifier.num_epochs=4',
    '--config.classifier.patience=10',
    *extra,
  ]


def test_four_devices_and_two_processes_give_the_same_metrics_as_one(tmp_path, data_dir):
  """1 device, 4 forced CPU devices in one process, and multi-host proven on one machine: two
  jax.distributed processes (one CPU device each, gloo between them), each feeding its rows of every global
  batch from its own reads, end with the same metrics."""
  runs = {}
  for n in (1, 4):
    env = {'XLA_FLAGS': f'--xla_force_host_platform_device_count={n}', 'JAX_PLATFORMS': 'cpu'}
    run_module('experiments.train_classifier', *_cli(tmp_path / f'd{n}', data_dir), env=env)
  run_processes(['-m', 'experiments.train_classifier', *_cli(tmp_path / 'p2', data_dir)])
  for name in ('d1', 'd4', 'p2'):
    runs[name] = json.loads((tmp_path / name / 'metrics.json').read_text())
  assert [runs[n]['devices'] for n in ('d1', 'd4', 'p2')] == [1, 4, 2]
  for other in ('d4', 'p2'):
    # The first epoch differs only in float summation order; after it, Adam compounds that (measured: 1e-6
    # relative after epoch 1, 3.6e-4 after epoch 4).
    for epoch, (a, b) in enumerate(zip(runs['d1']['history'], runs[other]['history'])):
      rel = 1e-5 if epoch == 0 else 1e-3
      assert a['train_loss'] == pytest.approx(b['train_loss'], rel=rel), (other, epoch)
      assert a['val_loss'] == pytest.approx(b['val_loss'], rel=rel), (other, epoch)
    for name, test in runs['d1']['tests'].items():  # every test image predicted once, whoever read it
      assert runs[other]['tests'][name]['n'] == test['n']
    assert runs['d1']['test_accuracy'] == pytest.approx(runs[other]['test_accuracy'], abs=1 / 24 + 1e-9)


def test_killed_run_resumes_to_the_same_metrics(tmp_path, data_dir):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  killed = tmp_path / 'killed'
  proc = subprocess.Popen(
    [sys.executable, '-m', 'experiments.train_classifier', *_cli(killed, data_dir)],
    cwd=ROOT,
    env=env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.time() + 300
  while not (killed / 'checkpoints' / '2').exists():  # epoch 2 of 4 is checkpointed
    assert proc.poll() is None and time.time() < deadline, 'run ended before it could be killed'
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (killed / 'metrics.json').exists()
  run_module('experiments.train_classifier', *_cli(killed, data_dir))
  run_module('experiments.train_classifier', *_cli(tmp_path / 'straight', data_dir))
  a = json.loads((killed / 'metrics.json').read_text())
  b = json.loads((tmp_path / 'straight' / 'metrics.json').read_text())
  assert a['history'] == b['history']
  assert a['tests'] == b['tests']
