"""Shared fixtures: the tiny preset with one TFDS data dir for the whole session."""

import os
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
