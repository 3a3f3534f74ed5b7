"""One contract for every stage's working directory: the config it was made with, one process at a time.

Every stage that trains into a workdir (a classifier run, each GAN, the sweep) is decorated with
`@workdirs.stage(sections)`. Before the stage touches anything:

- the workdir is created, or one line says why it cannot be (a file in the way, no permission);
- a lock (`.lock`, `fcntl.flock`) is taken for the stage's lifetime: a second process on the same workdir is
  refused, naming the holder. The kernel drops the lock when its holder dies, even by SIGKILL, so a killed
  run never leaves a stale lock behind. (flock is per host on some network filesystems: on a cluster, give
  each job its own workdir, as the sweep does.)
- the results-relevant part of the config (the stage's `sections` of keys, less `HARMLESS` ones) is compared with
  the record `config.json` the first run wrote: a rerun that would resume or relabel old work under other
  settings is refused, naming the changed keys. Nothing is changed.
"""

import contextlib
import functools
import json
import os

from fer_jax.infra import io_utils
from fer_jax.infra.errors import UserError

# The data keys every stage that reads a source depends on (how images are rendered, read and split).
DATA_KEYS = ('data.image_size', 'data.procedural', 'data.real')
RECORD = 'config.json'
LOCK = '.lock'
# Keys that change where or how often a stage writes, never what it computes.
HARMLESS = ('preset', 'data.data_dir', 'data.num_workers')
HARMLESS_SUFFIXES = ('.log_every', '.sample_every', '.checkpoint_every', '.checkpoint_every_seconds')


def flat(tree, prefix=''):
  """Nested dict -> {'a.b': value}, tuples as lists (as JSON gives them back)."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = list(v) if isinstance(v, tuple) else v
  return out


def _wanted(key, sections):
  if key in HARMLESS or key.endswith(HARMLESS_SUFFIXES):
    return False
  if sections is None:
    return not key.startswith('sweep.')
  return any(key == p or key.startswith(p + '.') for p in sections)


def relevant(config, sections=None):
  """The config keys that decide a stage's results: those under `sections` (key prefixes, e.g. ('seed',
  'data.pool_sources', 'classifier')), or every key but the `sweep` section's when None."""
  return {k: v for k, v in flat(config.to_dict()).items() if _wanted(k, sections)}


def make_dir(path, what='--workdir'):
  """os.makedirs with one clear line for what stops it."""
  try:
    os.makedirs(path, exist_ok=True)
  except FileExistsError:
    raise UserError(f'{what} {path}: a file is in the way (expected a directory)') from None
  except NotADirectoryError:
    raise UserError(f'{what} {path}: a parent of it is a file (expected directories)') from None
  except PermissionError:
    raise UserError(f'{what} {path}: no permission to create it') from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise UserError(f'{what} {path}: the directory is not writable')


def locked(workdir):
  """Holds `workdir`'s lock, or raises one line naming the process that holds it."""
  return io_utils.locked(os.path.join(workdir, LOCK), workdir)


LEGACY_RECORDS = ('sweep_config.json',)  # what sweeps wrote before every stage had a record
# Keys added since workdirs were first recorded, each with the value that computes what the code computed before
# the key existed: a record without the key reads as that value, so work made then is reused, not refused.
ADDED = {
  'classifier.mix': 'concat',
  'classifier.synthetic_fraction': 0.5,
  'classifier.synthetic_weight': 0.5,
  'synthetic.filter': 'none',
  'synthetic.min_confidence': 0.5,
  'synthetic.sensor_noise': 'none',
  'synthetic.au_scale': 1.0,
  'synthetic.oracle_intensity': 1.0,
  'expression_gan.cls_augment': False,
  'expression_gan.pair_shift': 0,
  'identity_gan.diffaugment': '',
  'identity_gan.num_classes': 0,
}


def check_record(workdir, config, sections=None, write=True):
  """Writes the stage's config record on the first run; refuses a rerun whose relevant keys differ."""
  path = os.path.join(workdir, RECORD)
  now = json.loads(json.dumps(relevant(config, sections), default=io_utils.to_builtin))
  legacy = [os.path.join(workdir, n) for n in LEGACY_RECORDS if os.path.exists(os.path.join(workdir, n))]
  if os.path.exists(path):
    before = io_utils.read_json(path)
  elif legacy:  # compare on the keys this rule keeps, then record in the current form
    before = {k: v for k, v in io_utils.read_json(legacy[0]).items() if _wanted(k, sections)}
  else:
    if write:
      io_utils.write_json(path, now)
    return
  before = {**{k: v for k, v in ADDED.items() if k in now}, **before}
  changed = sorted(k for k in set(before) | set(now) if before.get(k, '<unset>') != now.get(k, '<unset>'))
  if changed:
    detail = ', '.join(f'{k}: {before.get(k, "<unset>")!r} -> {now.get(k, "<unset>")!r}' for k in changed[:6])
    more = f' and {len(changed) - 6} more' if len(changed) > 6 else ''
    raise UserError(
      f'{workdir} holds work made with another config ({detail}{more}); rerun with the '
      'original settings, or use a fresh --workdir. Nothing was changed.'
    )
  if write and not os.path.exists(path):
    io_utils.write_json(path, now)


METRICS = 'metrics.json'  # a stage's results, written last (atomically): its presence means the stage finished


def finished(workdir, expect=None):
  """The results of the stage finished in `workdir`, or None: the one rule the trainers and the sweep use to
  skip finished work. `expect` ({'step': 1500, 'feature_net.fingerprint': ...}) lists values the results must
  hold to count (a stage rerun with more steps is not finished)."""
  path = os.path.join(workdir, METRICS)
  if not os.path.exists(path):
    return None
  done = io_utils.read_json(path)
  for key, value in (expect or {}).items():
    node = done
    for part in key.split('.'):
      node = node.get(part) if isinstance(node, dict) else None
    if node != value:
      return None
  return done


# Not a stage's own work: a record, locks, prepared datasets (WORKDIR/tfds by default) and the data preview.
_NOT_WORK = (RECORD, LOCK)
_NOT_WORK_DIRS = ('tfds', 'data')


def _holds_work(workdir):
  for root, dirs, files in os.walk(workdir):
    if root == workdir:
      dirs[:] = [d for d in dirs if d not in _NOT_WORK_DIRS]
    if any(f not in _NOT_WORK for f in files):
      return True
  return False


@contextlib.contextmanager
def claim(workdir, config, sections=None):
  """The workdir made, locked and checked against its config record, for the duration of the block.

  A first attempt that fails before writing anything (a bad setting, a missing source) takes its record
  with it, so the corrected command can run in the same workdir. In a multi-host job every process reads
  the record; process 0 alone locks and writes (the others share its workdir).
  """
  import jax  # pylint: disable=import-outside-toplevel  # (workdirs itself stays importable without it)

  workdir = os.path.abspath(os.fspath(workdir))
  make_dir(workdir)
  lead = jax.process_index() == 0
  with locked(workdir) if lead else contextlib.nullcontext():
    first = not os.path.exists(os.path.join(workdir, RECORD))
    check_record(workdir, config, sections, write=lead)
    try:
      yield workdir
    except BaseException:
      if lead and first and os.path.exists(os.path.join(workdir, RECORD)) and not _holds_work(workdir):
        os.remove(os.path.join(workdir, RECORD))
      raise


def stage(*sections):
  """Decorates `fn(config, workdir, ...)`: runs it inside `claim(workdir, config, sections or None)`."""

  def wrap(fn):
    @functools.wraps(fn)
    def run(config, workdir, *args, **kwargs):
      with claim(workdir, config, sections or None):
        return fn(config, workdir, *args, **kwargs)

    return run

  return wrap
