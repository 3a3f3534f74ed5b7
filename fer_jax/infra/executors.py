"""Where the sweep's jobs run: in this process ('local'), as Ray tasks ('ray') or as Slurm jobs through
submitit ('slurm'). One config field chooses: `sweep.executor`.

A job is one stage (the data, a GAN, a synthetic set, the quality scores) or one classifier run: a module-level
function and its arguments, named, with a log file. The sweep hands the executor one phase at a time (the
stages a phase needs have finished when it starts: the GANs before the synthetic sets before the runs) and gets
back each job's value or its failure. Every job writes into the sweep's workdir, so all executors need the
workdir on a filesystem every worker sees (NFS, Lustre, GCS FUSE...), and the package installed on every worker.
What is finished is skipped by the sweep before anything is submitted, so a rerun after a killed driver, a lost
node or a failed run submits only what is left.

No scheduling is done here: Ray places tasks on its cluster (and retries those whose worker was lost),
Slurm queues the job arrays (and requeues a job that times out or is preempted: a stage resumes from its own
checkpoint). The driver only waits, with a progress bar, and collects.
"""

import concurrent.futures
import contextlib
import dataclasses
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable

from tqdm.auto import tqdm

from fer_jax.infra import jit_cache
from fer_jax.infra.errors import UserError

EXECUTORS = ('local', 'ray', 'slurm')


@dataclasses.dataclass(frozen=True)
class Job:
  """`fn(*args)` named `name`, writing its output to `log`. A `stoppable` job takes `stop=threading.Event` and
  saves and raises when it is set (local only: a classifier run between two epochs). `jit_cache`: the persistent
  compilation cache the job's process uses (`jit_cache.use`; '' for none chosen here)."""

  name: str
  fn: Callable[..., Any]
  args: tuple
  log: str
  stoppable: bool = False
  jit_cache: str = ''


@dataclasses.dataclass(frozen=True)
class Failure:
  name: str
  message: str
  log: str

  def line(self):
    return f'{self.name} failed: {self.message} (log: {self.log})'


class Failed(UserError):
  """Jobs of a phase failed; the message has one line per failed job, with its log path."""

  def __init__(self, failures, what='jobs'):
    self.failures = list(failures)
    super().__init__(f'{len(self.failures)} {what} failed:\n' + '\n'.join('  ' + f.line() for f in self.failures))


def _one_line(e):
  text = ' '.join(str(e).split())
  return text if isinstance(e, UserError) else f'{type(e).__name__}: {text}' if text else type(e).__name__


@contextlib.contextmanager
def _output_to(path):
  """The process's stdout and stderr (file descriptors 1 and 2: Python's and XLA's alike) appended to `path`."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(1), os.dup(2)
  with open(path, 'a', buffering=1) as f:
    os.dup2(f.fileno(), 1)
    os.dup2(f.fileno(), 2)
    try:
      yield
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      os.close(saved[0])
      os.close(saved[1])


class Call:
  """What a worker runs: the job with its output in its log; returns ('ok', value) or ('error', one line).

  A failure comes back as a value, not an exception: the engines would wrap it (RayTaskError, submitit's
  FailedJobError) and Ray would retry it, while a job's own error is deterministic. A lost worker is the
  engine's to retry. `checkpoint` makes submitit requeue a Slurm job that times out or is preempted: every stage
  resumes from its own checkpoints.
  """

  def __call__(self, job):
    with _output_to(job.log):
      print(
        f'== {job.name} on {os.uname().nodename} (pid {os.getpid()}) at {time.strftime("%Y-%m-%d %H:%M:%S")}',
        flush=True,
      )
      try:
        if job.jit_cache:  # before the job compiles anything, in whichever process runs it
          jit_cache.use(job.jit_cache)
        return 'ok', job.fn(*job.args)
      except Exception as e:  # pylint: disable=broad-except  # reported by name with this log
        traceback.print_exc()
        return 'error', _one_line(e)

  def checkpoint(self, job):
    import submitit  # pylint: disable=import-outside-toplevel  # only ever called inside a submitit job

    return submitit.helpers.DelayedSubmission(self, job)


def run_job(job):
  """`Call()(job)` as a function (what `ray.remote` takes)."""
  return Call()(job)


def _collect(status_value, job, failures, results):
  status, value = status_value
  if status == 'ok':
    results[job.name] = value
  else:
    failures.append(Failure(job.name, value, job.log))


# ------------------------------------------------------------------------------------------------- local
class Local:
  """Jobs in this process; `threads` > 1 trains that many at once (threads sharing the compiled steps)."""

  name = 'local'

  def run(self, jobs, bar=None, threads=1):
    results, failures = {}, []
    stop = threading.Event()

    def call(job):
      try:
        value = job.fn(*job.args, stop=stop) if job.stoppable else job.fn(*job.args)
      except Exception as e:  # pylint: disable=broad-except
        if stop.is_set():  # stopped by Ctrl-C: not a failure of its own
          raise
        os.makedirs(os.path.dirname(job.log), exist_ok=True)
        with open(job.log, 'a') as f:
          traceback.print_exc(file=f)
        return 'error', _one_line(e)
      return 'ok', value

    if threads == 1 or len(jobs) <= 1:
      for job in jobs:
        _collect(call(job), job, failures, results)
        _tick(bar, job)
      return results, failures
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix='job') as pool:
      futures = {pool.submit(call, job): job for job in jobs}
      try:
        for f in concurrent.futures.as_completed(futures):
          _collect(f.result(), futures[f], failures, results)
          _tick(bar, futures[f])
      except BaseException:  # Ctrl-C: the running jobs save after their epoch and stop, then this raises
        stop.set()
        for f in futures:
          f.cancel()
        raise
    return results, failures


def _tick(bar, job):
  if bar is not None:
    bar.update(1)
    bar.set_postfix_str(job.name)


# --------------------------------------------------------------------------------------------------- ray
def _resources(text):
  """'TPU=4,accelerator_type:TPU-V5E=0.001' -> {'TPU': 4.0, ...}: custom Ray resources a task needs."""
  out = {}
  for item in filter(None, (x.strip() for x in str(text).split(','))):
    name, sep, amount = item.partition('=')
    try:
      out[name.strip()] = float(amount)
    except ValueError:
      sep = ''
    if not sep or not name.strip():
      raise UserError(f'sweep.ray_resources: {item!r} is not NAME=AMOUNT (e.g. TPU=4)')
  return out


class Ray:
  """Each job a Ray task on the cluster at `sweep.ray_address` ('' starts a local Ray instance; 'auto' joins
  the cluster this machine belongs to; 'ray://head:10001' a remote one)."""

  name = 'ray'

  def __init__(self, config):
    try:
      import ray  # pylint: disable=import-outside-toplevel  # optional: pip install -e '.[ray]'
    except ImportError:
      raise UserError("sweep.executor='ray' needs Ray: pip install -e '.[ray]'") from None
    self.ray = ray
    s = config.sweep
    if not ray.is_initialized():
      ray.init(address=s.ray_address or None, include_dashboard=False, log_to_driver=False, logging_level='warning')
    self.options = {
      'num_cpus': float(s.ray_cpus_per_task),
      'num_gpus': float(s.ray_gpus_per_task),
      'resources': _resources(s.ray_resources),
      'max_retries': int(s.ray_max_retries),
    }
    self.remote = ray.remote(run_job)

  def run(self, jobs, bar=None, threads=None):
    del threads
    results, failures = {}, []
    pending = {self.remote.options(name=job.name, **self.options).remote(job): job for job in jobs}
    try:
      while pending:
        ready, _ = self.ray.wait(list(pending), num_returns=1)
        job = pending.pop(ready[0])
        try:
          _collect(self.ray.get(ready[0]), job, failures, results)
        except self.ray.exceptions.RayError as e:  # a worker lost more often than max_retries, or cancelled
          failures.append(Failure(job.name, _one_line(e).splitlines()[0][:300], job.log))
        _tick(bar, job)
    except BaseException:  # Ctrl-C: the tasks would otherwise go on holding their workdirs
      for ref in pending:
        self.ray.cancel(ref, force=True)
      raise
    return results, failures


# ------------------------------------------------------------------------------------------------- slurm
class Slurm:
  """Each phase a Slurm job array through submitit (`sweep.slurm`); `cluster='local'` runs the same jobs as
  local processes (submitit's LocalExecutor: a test of the whole path without a cluster)."""

  name = 'slurm'
  POLL_SECONDS = {'slurm': 5.0, 'local': 0.5}  # Slurm's queue is asked no more often than submitit caches it

  def __init__(self, config, workdir):
    try:
      import submitit  # pylint: disable=import-outside-toplevel  # optional: pip install -e '.[slurm]'
    except ImportError:
      raise UserError("sweep.executor='slurm' needs submitit: pip install -e '.[slurm]'") from None
    s = config.sweep.slurm
    if s.cluster not in ('slurm', 'local'):
      raise UserError(
        f"sweep.slurm.cluster={s.cluster!r}; expected 'slurm', or 'local' (the same jobs as local processes)"
      )
    self.cluster = s.cluster
    self.window = int(s.array_parallelism)
    self.executor = submitit.AutoExecutor(folder=os.path.join(workdir, 'logs', 'submitit', '%j'), cluster=s.cluster)
    params = {
      'timeout_min': int(s.timeout_min),
      'cpus_per_task': int(s.cpus_per_task),
      'gpus_per_node': int(s.gpus_per_task),
      'tasks_per_node': 1,
      'nodes': 1,
      'name': 'fer_jax',
      'slurm_array_parallelism': self.window,
    }
    if s.partition:
      params['slurm_partition'] = s.partition
    if s.mem_gb:
      params['mem_gb'] = float(s.mem_gb)
    self.executor.update_parameters(**params)

  def run(self, jobs, bar=None, threads=None):
    del threads
    results, failures, pending = {}, [], {}
    queue = list(jobs)
    try:
      while queue or pending:
        if queue and (self.cluster == 'slurm' or len(pending) < self.window):
          # Slurm takes the phase as one job array and runs `array_parallelism` of it at once; submitit's
          # local processes would all start together, so they are submitted as the window frees.
          batch = queue if self.cluster == 'slurm' else queue[: self.window - len(pending)]
          queue = queue[len(batch) :]
          with self.executor.batch():
            submitted = [(self.executor.submit(Call(), job), job) for job in batch]
          pending.update({id(h): (h, job) for h, job in submitted})
        for key, (handle, job) in list(pending.items()):
          if handle.done():
            del pending[key]
            try:
              _collect(handle.result(), job, failures, results)
            except Exception as e:  # pylint: disable=broad-except  # killed, timed out for good, node failure
              failures.append(Failure(job.name, _one_line(e).splitlines()[0][:300], str(handle.paths.stderr)))
            _tick(bar, job)
        time.sleep(self.POLL_SECONDS[self.cluster] if pending else 0)
    except BaseException:  # Ctrl-C: cancel what this driver submitted
      for handle, _ in pending.values():
        with contextlib.suppress(Exception):
          handle.cancel(check=False)
      raise
    return results, failures


def make(config, workdir):
  """The executor `sweep.executor` names, or one line saying what is expected."""
  name = config.sweep.executor
  if name == 'local':
    return Local()
  if name == 'ray':
    return Ray(config)
  if name == 'slurm':
    return Slurm(config, workdir)
  raise UserError(f'sweep.executor={name!r}; expected one of {", ".join(EXECUTORS)}')


def check(config):
  """The executor settings, checked before anything is submitted."""
  s = config.sweep
  if s.executor not in EXECUTORS:
    raise UserError(f'sweep.executor={s.executor!r}; expected one of {", ".join(EXECUTORS)}')
  _resources(s.ray_resources)
  for key, value, least in (
    ('ray_cpus_per_task', s.ray_cpus_per_task, 0),
    ('ray_gpus_per_task', s.ray_gpus_per_task, 0),
    ('ray_max_retries', s.ray_max_retries, 0),
    ('slurm.cpus_per_task', s.slurm.cpus_per_task, 1),
    ('slurm.gpus_per_task', s.slurm.gpus_per_task, 0),
    ('slurm.timeout_min', s.slurm.timeout_min, 1),
    ('slurm.array_parallelism', s.slurm.array_parallelism, 1),
    ('slurm.mem_gb', s.slurm.mem_gb, 0),
  ):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < least:
      raise UserError(f'sweep.{key}={value!r}; expected a number >= {least}')


def progress(total, done, desc):
  """The bar over finished jobs of a phase, whatever the executor: `done` were finished before this run."""
  return tqdm(total=total, initial=done, desc=desc, unit='run')
