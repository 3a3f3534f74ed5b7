"""The sweep compiles through a persistent compilation cache in WORKDIR/cache/jit (`fer_jax.infra.jit_cache`), set
in the process that runs each job, unless the user chose one (JAX_COMPILATION_CACHE_DIR: the tests' session
cache, `conftest`)."""

import os
import subprocess
import sys

from fer_jax.infra import jit_cache
from tests.conftest import ROOT

# The sweep's data stage as the sweep runs it (`sweep._job`, a local executor), in a fresh process with no cache
# chosen: the procedural renderer's programs are compiled there.
DATA_STAGE = """
import sys
from configs import default
from fer_jax import sweep
from fer_jax.infra import executors
config = default.get_config('tiny')
workdir = sys.argv[1]
config.data.data_dir = workdir + '/tfds'
values, failures = executors.Local().run([sweep._job(config, workdir, 'data', sweep.data_stage)])
assert not failures, failures
"""


def _entries(directory):
  return [f for _, _, files in os.walk(directory) for f in files]


def test_a_sweep_stage_fills_the_workdirs_cache(tmp_path):
  env = {k: v for k, v in os.environ.items() if k not in (jit_cache.ENV_DIR, jit_cache.ENV_MIN_SECONDS)}
  env.update(PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
  work = tmp_path / 'w'
  proc = subprocess.run(
    [sys.executable, '-c', DATA_STAGE, str(work)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
  )
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
  assert (work / 'data' / 'data_stats.json').exists()
  assert _entries(jit_cache.directory_of(str(work))), 'no compiled program in WORKDIR/cache/jit'


def test_the_users_cache_wins(tmp_path):
  """Here JAX_COMPILATION_CACHE_DIR is the tests' (conftest): the sweep keeps it and creates no cache of its own."""
  chosen = os.environ[jit_cache.ENV_DIR]
  assert jit_cache.use(str(tmp_path / 'cache' / 'jit')) == chosen
  assert not (tmp_path / 'cache').exists()
