"""Identity GAN: training end to end, 4 devices = 1 device, kill + rerun = uninterrupted, NaN stop, sampling,
and the Fréchet distance against its closed form.

Training runs in subprocesses (the multi-device one needs XLA_FLAGS before jax starts). They share a
persistent compilation cache and use XLA's lowest backend optimisation level: compiling the G+D step
dominates these runs, and the programs are identical across them.
"""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import default
from fer_jax.data import sources
from fer_jax.eval import gan_metrics
from fer_jax.infra import io_utils
from fer_jax.train import generators, identity_gan
from tests.conftest import run_processes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 8
OVERRIDES = {  # tiny at 16x16: 4 -> 8 -> 16; R1 at steps 0 and 4; checkpoints every 2 steps
  'data.image_size': 16,
  'identity_gan.steps': STEPS,
  'identity_gan.checkpoint_every': 2,
  'identity_gan.sample_every': 4,
  'identity_gan.r1_every': 4,
  'identity_gan.log_every': 1,
  'identity_gan.eval_samples': 32,
}


def _config(**extra):
  c = default.get_config('tiny')
  with c.unlocked():
    for k, v in {**OVERRIDES, **extra}.items():
      section, name = k.split('.')
      c[section][name] = v
  return c


@pytest.fixture(scope='module')
def env(tmp_path_factory):
  root = tmp_path_factory.mktemp('idgan')
  data_dir = str(root / 'tfds')
  c = _config()
  with c.unlocked():
    c.data.data_dir = data_dir
  sources.load(sources.parse_sources(c.data.pool_sources)[0], 'pool', c, str(root))  # build once
  e = dict(
    os.environ,
    PYTHONPATH=REPO,
    JAX_COMPILATION_CACHE_DIR=str(root / 'jax_cache'),
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
    JAX_PLATFORMS='cpu',
    XLA_FLAGS='--xla_backend_optimization_level=0',
  )
  return dict(root=root, data_dir=data_dir, env=e)


def _cmd(env, workdir, **extra):
  args = [
    sys.executable,
    '-m',
    'experiments.train_identity_gan',
    '--config=configs/default.py:tiny',
    f'--workdir={workdir}',
    f'--config.data.data_dir={env["data_dir"]}',
  ]
  args += [f'--config.{k}={v}' for k, v in {**OVERRIDES, **extra}.items()]
  return args


def _popen(env, workdir, devices=1, **extra):
  e = dict(env['env'])
  if devices > 1:
    e['XLA_FLAGS'] += f' --xla_force_host_platform_device_count={devices}'
  return subprocess.Popen(
    _cmd(env, workdir, **extra), cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )


def _finish(proc, timeout=240):
  out, _ = proc.communicate(timeout=timeout)
  return proc.returncode, out


def _state(workdir, step=None):
  state, meta = identity_gan.restore_state(str(workdir), _config(), step)
  return jax.tree.map(np.asarray, state), meta


@pytest.fixture(scope='module')
def runs(env):
  """The uninterrupted 1-device reference and a 4-device run, started together (compiles overlap)."""
  ref, four = env['root'] / 'ref', env['root'] / 'four'
  p1 = _popen(env, ref)
  p4 = _popen(env, four, devices=4)
  (rc1, out1), (rc4, out4) = _finish(p1), _finish(p4)
  assert rc1 == 0, out1[-3000:]
  assert rc4 == 0, out4[-3000:]
  return dict(ref=ref, four=four)


def test_train_writes_finite_metrics_and_sample_grid(runs):
  m = io_utils.read_json(runs['ref'] / 'metrics.json')
  assert m['step'] == STEPS
  for k in ('fd', 'precision', 'recall', 'fd_truncated'):
    assert np.isfinite(m[k]), k
  for name in ('untrained_generator', 'pixel_gaussian', 'real_train_pool'):
    assert np.isfinite(m['baselines'][name]['fd']), name
  assert [h['step'] for h in m['history']] == [4, 8]
  assert m['feature_net']['subjects'] == m['pool']['train_subjects'] > 0
  assert m['pool']['holdout_subjects'] >= 2
  png = runs['ref'] / 'samples' / 'identities.png'
  from PIL import Image  # pylint: disable=import-outside-toplevel

  img = np.asarray(Image.open(png))
  assert img.ndim == 2 and img.shape[0] >= 8 * 16 and img.std() > 0


def test_four_devices_match_one_device(runs):
  s1, m1 = _state(runs['ref'])
  s4, m4 = _state(runs['four'])
  assert int(s1.step) == int(s4.step) == STEPS
  for part in ('g_params', 'd_params', 'g_ema', 'w_avg'):
    for a, b in zip(jax.tree.leaves(getattr(s1, part)), jax.tree.leaves(getattr(s4, part))):
      np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3, err_msg=part)
  np.testing.assert_allclose(m1['history'][-1]['fd'], m4['history'][-1]['fd'], rtol=0.05)


def test_two_processes_match_one_process(env, runs):
  """Multi-host on one machine: two jax.distributed processes (one CPU device each) train the GAN as one
  process does, each reading its rows of every global batch."""
  work = env['root'] / 'two_processes'
  run_processes(_cmd(env, work)[1:], env=env['env'], timeout=240)
  s1, m1 = _state(runs['ref'])
  s2, m2 = _state(work)
  assert int(s2.step) == STEPS
  for part in ('g_params', 'd_params', 'g_ema', 'w_avg'):
    for a, b in zip(jax.tree.leaves(getattr(s1, part)), jax.tree.leaves(getattr(s2, part))):
      np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3, err_msg=part)
  np.testing.assert_allclose(m1['history'][-1]['fd'], m2['history'][-1]['fd'], rtol=0.05)


def test_kill_and_rerun_equals_uninterrupted(env, runs):
  work = env['root'] / 'killed'
  proc = _popen(env, work)
  first = work / 'checkpoints' / '2'
  deadline = time.time() + 240
  while not first.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  rc, out = _finish(proc)
  assert rc == -signal.SIGKILL, f'the run ended (rc {rc}) before it could be killed:\n{out[-2000:]}'
  assert not (work / 'metrics.json').exists()
  rc, out = _finish(_popen(env, work))
  assert rc == 0, out[-3000:]
  assert 'resumed at step' in out
  a, _ = _state(runs['ref'])
  b, _ = _state(work)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(env, runs):
  del runs  # after the reference run, so that the compilation cache is warm
  work = env['root'] / 'nan'
  rc, out = _finish(_popen(env, work, **{'identity_gan.debug_nan_step': 5}))
  assert rc != 0
  last = out.strip().splitlines()[-1]
  assert last.startswith('error: identity GAN diverged') and 'between steps 5 and 5' in last, last
  assert 'step 4' in last
  state, meta = _state(work)
  assert int(state.step) == meta['step'] == 4
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))
  assert not (work / 'metrics.json').exists()


def test_sample_identities_is_deterministic_and_nested(runs):
  gen = generators.load_identity(str(runs['ref']), _config())
  key = jax.random.PRNGKey(3)
  a = generators.sample_identities(gen, key, 12, psi=0.7, batch_size=8)
  b = generators.sample_identities(gen, key, 12, psi=0.7, batch_size=8)
  assert a.shape == (12, 16, 16, 1) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(generators.sample_identities(gen, key, 5, psi=0.7, batch_size=8), a[:5])
  c = generators.sample_identities(gen, jax.random.PRNGKey(4), 12, psi=0.7, batch_size=8)
  assert np.abs(a.astype(int) - c).mean() > 0.5


def test_frechet_distance_matches_closed_form():
  rng = np.random.default_rng(0)
  d = 6
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  # Diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
  a, b = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(gan_metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), want, rtol=1e-9)
  # Full covariances that commute (same eigenvectors): the same formula on the eigenvalues.
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))
  s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
  np.testing.assert_allclose(gan_metrics.frechet_distance(mu1, s1, mu2, s2), want, rtol=1e-8)
  # Non-commuting: against scipy's matrix square root.
  from scipy import linalg  # pylint: disable=import-outside-toplevel

  m1, m2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
  s1, s2 = m1 @ m1.T + 0.1 * np.eye(d), m2 @ m2.T + 0.1 * np.eye(d)
  ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(linalg.sqrtm(s1 @ s2)))
  np.testing.assert_allclose(gan_metrics.frechet_distance(mu1, s1, mu2, s2), ref, rtol=1e-6)
  # Sample estimates converge to the closed form.
  x = rng.multivariate_normal(mu1, np.diag(a), 20000)
  y = rng.multivariate_normal(mu2, np.diag(b), 20000)
  est = gan_metrics.frechet_distance(*gan_metrics.gaussian_stats(x), *gan_metrics.gaussian_stats(y))
  np.testing.assert_allclose(est, want, rtol=0.05)


def test_precision_recall_detects_collapse():
  rng = np.random.default_rng(1)
  real = rng.normal(size=(300, 4))
  assert gan_metrics.precision_recall(real, real.copy()) == (1.0, 1.0)
  collapsed = real[:1] + 0.01 * rng.normal(size=(300, 4))  # every fake is one real point
  p, r = gan_metrics.precision_recall(real, collapsed)
  assert p > 0.9 and r < 0.05
  far = rng.normal(size=(300, 4)) + 50
  assert gan_metrics.precision_recall(real, far) == (0.0, 0.0)


def test_diffaugment_is_an_option_and_a_bad_policy_is_one_line():
  """With identity_gan.diffaugment the critic scores transformed faces: the same state and batch give another D
  loss and still finite steps; '' is StyleGAN2 as published; a misspelt policy is refused up front."""
  from fer_jax.infra import parallel  # pylint: disable=import-outside-toplevel
  from fer_jax.infra.errors import UserError  # pylint: disable=import-outside-toplevel

  images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)
  d_loss = {}
  for policy in ('', 'color+translation+cutout'):
    config = _config(**{'identity_gan.diffaugment': policy})
    programs = identity_gan.compiled(identity_gan.hparams(config))
    state = parallel.replicate(programs.init(jax.random.PRNGKey(0)))
    batch = parallel.shard_batch({'image': images})
    nan_step = parallel.replicate(np.int32(-1))
    state, _ = programs.r1(state, batch, nan_step)
    state, m = programs.train(state, batch, nan_step)
    assert all(np.isfinite(np.asarray(v)) for v in m.values()), (policy, m)
    d_loss[policy] = float(m['d_loss'])
  assert d_loss[''] != d_loss['color+translation+cutout']
  with pytest.raises(UserError, match=r"identity_gan.diffaugment='colour'.*color, translation, cutout"):
    identity_gan.check_config(_config(**{'identity_gan.diffaugment': 'colour'}))
