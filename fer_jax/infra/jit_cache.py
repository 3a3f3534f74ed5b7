"""JAX's persistent compilation cache for a sweep: each program is compiled once per shape across the runs, stages
and processes of a sweep and across reruns of it, and later read from disk.

`use(directory)` points this process at `directory` (the sweep's WORKDIR/cache/jit) unless the user chose a cache
already (JAX_COMPILATION_CACHE_DIR, or jax.config in a notebook), and exports the choice to the environment, so
that the processes this one starts (submitit's local jobs, a local Ray's workers) use it too. The executors also
call it in each job's process (`executors.Call`), which covers workers that do not inherit this environment.

It can be called at any time before or after compilations (JAX opens its cache at the first compilation that
finds a directory set); programs compiled before it are not cached. A cached executable is the program XLA
compiled, so results do not depend on the cache. Every program is cached, however small or quick to compile
(`jax_persistent_cache_min_compile_time_secs` 0 unless the user set JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS): a
sweep compiles hundreds of sub-second programs (eval, predict, rendering), which add up to minutes, and reading
an entry takes milliseconds.
"""

import os

import jax

ENV_DIR = 'JAX_COMPILATION_CACHE_DIR'
ENV_MIN_SECONDS = 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'


def directory_of(workdir):
  """Where a sweep in `workdir` caches its programs."""
  return os.path.join(workdir, 'cache', 'jit')


def use(directory):
  """Persistent compilation cache in `directory` unless one is chosen already; returns the directory in use."""
  chosen = jax.config.jax_compilation_cache_dir or os.environ.get(ENV_DIR)
  if not chosen:
    chosen = os.path.abspath(directory)
    os.makedirs(chosen, exist_ok=True)
    if ENV_MIN_SECONDS not in os.environ:
      jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
      os.environ[ENV_MIN_SECONDS] = '0'
  if jax.config.jax_compilation_cache_dir != chosen:  # also a variable set after jax was imported
    jax.config.update('jax_compilation_cache_dir', chosen)
  os.environ.setdefault(ENV_DIR, chosen)  # for the processes this one starts
  return chosen
