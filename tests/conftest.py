"""Shared fixtures: the tiny preset with one TFDS data dir for the whole session."""

import csv
import fcntl
import os
import shutil
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# One persistent compilation cache for the session, this process and every subprocess it starts (set before
# jax is imported): the tests start the same tiny programs in dozens of processes, and a cached executable is
# the same program, so results do not change.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  import tempfile  # pylint: disable=g-import-not-at-top

  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='fer_jax_test_jit_cache_')
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'

from configs import default  # noqa: E402  # pylint: disable=wrong-import-position

# The files that take longest, first: `make test` runs the suite as two pytest-xdist workers, one file at a time
# each (`--dist loadfile`: a file's module fixtures are built once), in this order, so the longest files start
# at once rather than last; the sweep's other files come after test_expression_gan, by when test_sweep has made
# the `finished` sweep they read.
SLOWEST_FIRST = (
  'test_sweep.py',
  'test_expression_gan.py',
  'test_sweep_executors.py',
  'test_sweep_axes.py',
  'test_identity_gan.py',
  'test_classifier.py',
)


def pytest_collection_modifyitems(items):
  rank = lambda item: SLOWEST_FIRST.index(item.path.name) if item.path.name in SLOWEST_FIRST else len(SLOWEST_FIRST)
  items.sort(key=rank)  # stable: each file keeps its own order


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


@pytest.fixture
def tiny(data_dir):
  """A fresh, unlocked-for-edits copy of the tiny preset reading the session's data dir."""
  config = default.get_config('tiny')
  config.data.data_dir = data_dir
  return config


def run_processes(argv, *, processes=2, devices=1, env=None, timeout=600):
  """Runs `python *argv` as `processes` jax.distributed processes on localhost (gloo between CPU processes),
  `devices` forced CPU devices each, the way a multi-host job starts (JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES, JAX_PROCESS_ID); fails with their outputs unless every one exits 0."""
  with socket.socket() as sock:
    sock.bind(('localhost', 0))
    address = f'localhost:{sock.getsockname()[1]}'
  base = {**os.environ, 'PYTHONPATH': ROOT, 'JAX_PLATFORMS': 'cpu', **(env or {})}
  base['XLA_FLAGS'] = f'{base.get("XLA_FLAGS", "")} --xla_force_host_platform_device_count={devices}'.strip()
  procs = [
    subprocess.Popen(
      [sys.executable, *argv],
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
      env=dict(base, JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(i)),
    )
    for i in range(processes)
  ]
  outs = [p.communicate(timeout=timeout)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), '\n'.join(o[-3000:] for o in outs)
  return outs


def run_module(module, *args, env=None, timeout=600, check=True):
  """Runs `python -m module args` from the repo root; returns the CompletedProcess."""
  full_env = dict(os.environ, **(env or {}))
  proc = subprocess.run(
    [sys.executable, '-m', module, *args],
    cwd=ROOT,
    env=full_env,
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )
  if check and proc.returncode != 0:
    raise AssertionError(f'{module} failed ({proc.returncode}):\n{proc.stderr[-4000:]}')
  return proc


def shared_dir(tmp_path_factory, name, make):
  """A folder `make(folder)` fills once per test session: under pytest-xdist, whichever worker asks first makes
  it while the others wait on a lock, then every worker reads it (tests must not change it)."""
  if 'PYTEST_XDIST_WORKER' not in os.environ:
    folder = tmp_path_factory.mktemp(name) / 'w'
    make(folder)
    return folder
  root = tmp_path_factory.getbasetemp().parent  # the session's, shared by its workers
  folder, done = root / name / 'w', root / name / 'done'
  with open(root / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(root / name, ignore_errors=True)  # a worker that failed making it left a part
      (root / name).mkdir()
      make(folder)
      done.touch()
  return folder


# ----------------------------------------------------------------------------------------- the sweep
REPRODUCIBLE = (  # results.csv's columns that do not depend on timing
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


def sweep_cmd(workdir, *flags):
  """The tiny sweep's command line in `workdir`, with `flags`."""
  return [sys.executable, '-m', 'experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={workdir}', *flags]


def result_rows(path, extra=()):
  """results.csv's rows, the REPRODUCIBLE columns and `extra` ones."""
  with open(path) as f:
    return [{k: r[k] for k in REPRODUCIBLE + tuple(extra)} for r in csv.DictReader(f)]


@pytest.fixture(scope='session')
def finished(tmp_path_factory):
  """One uninterrupted tiny sweep, run as a user would (shared by the sweep's test files)."""
  return shared_dir(
    tmp_path_factory,
    'finished_sweep',
    lambda w: run_module('experiments.sweep', '--config=configs/default.py:tiny', f'--workdir={w}'),
  )


def data_only(finished, w):
  """A copy of the finished sweep's workdir without what follows its data stage (its data is reused)."""
  shutil.copytree(
    finished,
    w,
    ignore=shutil.ignore_patterns(
      'gan*', 'runs', 'results.*', 'report.md', 'samples', 'summary.json', 'synthetic_quality.json'
    ),
  )
