"""Data parallelism for every trainer: one 1-D mesh over all devices, batch sharded, state replicated.

Steps are plain `jax.jit` over global arrays: the batch is laid out `P('data')` and the train state `P()`.
XLA inserts the gradient all-reduce, so a step computes exactly the global-batch gradient and 1 device and
N devices agree up to float summation order. Multi-host jobs call `initialize_distributed()` first; each
process then feeds its own slice of the global batch through `shard_batch`.
"""

import functools
import os

from absl import logging
import jax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

AXIS = 'data'


def initialize_distributed():
  """Starts multi-host JAX when the job was launched as one.

  Slurm, Open MPI and Cloud TPU are detected by `jax.distributed.initialize()` itself. Anywhere else (VMs, a
  Kubernetes job, two processes on one machine) give every process JAX_COORDINATOR_ADDRESS=host:port (process
  0's), JAX_NUM_PROCESSES=N and JAX_PROCESS_ID=i. CPU processes talk through gloo.
  """
  env = os.environ
  if not any(
    k in env
    for k in (
      'JAX_COORDINATOR_ADDRESS',
      'COORDINATOR_ADDRESS',
      'SLURM_NTASKS',
      'TPU_WORKER_HOSTNAMES',
      'MEGASCALE_COORDINATOR_ADDRESS',
    )
  ):
    return
  if jax.distributed.is_initialized():
    return
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # the CPU backend's; others ignore it
  kwargs = {
    k: int(env[v]) for k, v in (('num_processes', 'JAX_NUM_PROCESSES'), ('process_id', 'JAX_PROCESS_ID')) if v in env
  }
  jax.distributed.initialize(**kwargs)


@functools.lru_cache(maxsize=None)
def make_mesh():
  return Mesh(np.asarray(jax.devices()), (AXIS,))


def replicated(mesh=None):
  return NamedSharding(mesh or make_mesh(), P())


def batch_sharded(mesh=None):
  return NamedSharding(mesh or make_mesh(), P(AXIS))


def check_batch_size(batch_size, what='batch_size', mesh=None):
  n = (mesh or make_mesh()).size
  if batch_size <= 0 or batch_size % n:
    raise ValueError(f'{what}={batch_size} must be a positive multiple of the {n} devices in the mesh')
  return batch_size // jax.process_count()


def replicate(tree, mesh=None):
  """Puts a pytree on every device (the train state)."""
  return jax.device_put(tree, replicated(mesh))


def shard_batch(batch, mesh=None):
  """Host numpy batch (this process's slice) -> global arrays sharded along the batch axis."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


# jax 0.10's XLA:CPU hands convolutions to YNNPACK by default, which ran the classifier's 3x3 convs at 21-34
# GFLOP/s on a 2-core AVX-512 machine where XLA's Eigen convolution ran them at 134-141 (the classifier's step:
# 47 vs 115 img/s). The list keeps YNNPACK's other default fusions (dots, reductions). XLA_FLAGS can only say
# this for the whole process and before jax starts; a compiler option says it per program.
_CPU_COMPILER_OPTIONS = {
  'xla_cpu_experimental_ynn_fusion_type': 'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE'
}


@functools.lru_cache(maxsize=None)
def _cpu_options_accepted():
  try:
    jax.jit(lambda x: x + 1, compiler_options=_CPU_COMPILER_OPTIONS).lower(np.float32(0)).compile()
    return True
  except jax.errors.JaxRuntimeError as e:  # a later jaxlib that renamed the option or its values
    logging.warning(
      'XLA:CPU rejected %s (%s); compiling with its defaults, whose convolutions may be slower',
      _CPU_COMPILER_OPTIONS,
      e,
    )
    return False


def compiler_options(mesh=None):
  """XLA options for programs on `mesh`'s devices: the CPU's faster convolution kernel; none elsewhere."""
  cpu = (mesh or make_mesh()).devices.flat[0].platform == 'cpu'
  return dict(_CPU_COMPILER_OPTIONS) if cpu and _cpu_options_accepted() else None


def jit(fn, **kwargs):
  """`jax.jit` with `compiler_options()`: every program with convolutions compiles through here or
  `data_parallel`."""
  return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


def data_parallel(
  fn, *, batch_argnums=(1,), donate_argnums=(), static_argnums=(), num_args=None, mesh=None, out_sharding=None
):
  """jit `fn` with the arguments in `batch_argnums` sharded on the batch axis and the rest replicated.

  Outputs are replicated unless `out_sharding` says otherwise (e.g. per-example predictions).
  """
  mesh = mesh or make_mesh()
  if num_args is None:
    num_args = fn.__code__.co_argcount
  in_shardings = tuple(
    batch_sharded(mesh) if i in batch_argnums else replicated(mesh) for i in range(num_args) if i not in static_argnums
  )
  return jax.jit(
    fn,
    in_shardings=in_shardings,
    out_shardings=out_sharding or replicated(mesh),
    donate_argnums=donate_argnums,
    static_argnums=static_argnums,
    compiler_options=compiler_options(mesh),
  )


def to_host(tree):
  """Fetch (replicated or sharded) results to numpy: the only host sync, done at logging intervals."""
  return jax.tree.map(lambda x: np.asarray(jax.device_get(x)), tree)


def map_batches(fn, inputs, batch_size):
  """`fn(*chunk)` over the rows of `inputs` (equal-length numpy arrays) in batches of exactly `batch_size`, the
  last one padded by repeating its last row, so that `fn` compiles once whatever the number of rows; returns
  `fn`'s outputs (a pytree of arrays; None leaves stay None) for the real rows, concatenated, as numpy."""
  n = len(inputs[0])
  if n == 0:
    raise ValueError('map_batches needs at least one row')
  outs = []
  for i in range(0, n, batch_size):
    chunk = [x[i : i + batch_size] for x in inputs]
    m = len(chunk[0])
    if m < batch_size:
      chunk = [np.concatenate([c, np.repeat(c[-1:], batch_size - m, 0)]) for c in chunk]
    outs.append(jax.tree.map(lambda y, m=m: np.asarray(y)[:m], fn(*chunk)))
  return jax.tree.map(lambda *ys: np.concatenate(ys), *outs)
