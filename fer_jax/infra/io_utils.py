"""Result files are written atomically: a temp file in the same folder, then a rename."""

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import tempfile

from absl import logging as absl_logging

from fer_jax.infra.errors import UserError


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


_MODE = 0o666 & ~_umask()  # what open() would have given a new file; mkstemp's files are 0600


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temp path next to `path`; renames it onto `path` only if the block succeeds."""
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
  os.close(fd)
  try:
    yield tmp
    os.chmod(tmp, _MODE)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path, text):
  with atomic_path(path) as tmp:
    with open(tmp, 'w') as f:
      f.write(text)


def write_json(path, obj):
  write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=to_builtin) + '\n')


def read_json(path):
  """A JSON file's content; a corrupt one is one line naming it (a result file is never half-written, so
  corruption came from outside: delete the file and rerun the command that writes it)."""
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise UserError(f'{path} is not valid JSON ({e}); delete it and rerun the command that wrote it') from None


def to_builtin(x):
  import numpy as np  # pylint: disable=import-outside-toplevel

  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, (tuple, set)):
    return list(x)
  raise TypeError(f'cannot write {type(x).__name__} to JSON')


def save_figure(fig, path, **kwargs):
  """matplotlib figure -> PNG, atomically."""
  with atomic_path(path) as tmp:
    fig.savefig(tmp, format='png', **kwargs)


def _holder(path):
  try:
    with open(path) as f:
      return f.read().strip() or 'another process'
  except OSError:
    return 'another process'


@contextlib.contextmanager
def locked(path, what, wait=False):
  """Holds an exclusive `fcntl.flock` on the file `path` (created if missing) for the block.

  wait=False: a held lock is one UserError naming its holder; wait=True: blocks until it is free. The kernel
  drops a lock when its holder dies, even by SIGKILL, so no stale lock ever needs cleaning. (flock is per
  host on some network filesystems.)
  """
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides, as for any file
  except PermissionError:
    raise UserError(f'{what}: no permission to write its lock file {path}') from None
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
      raise UserError(f'{what} is in use by {_holder(path)}; wait for it to finish or stop it') from None
    except OSError as e:
      if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        raise
      # Some network filesystems (Lustre without -o flock, FUSE mounts) have no flock: work unlocked.
      absl_logging.warning(
        '%s: the filesystem cannot lock %s (%s); not guarding against a second process', what, path, e.strerror
      )
      yield
      return
    os.ftruncate(fd, 0)
    command = ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])[:300] if sys.argv else ''
    os.write(fd, f'process {os.getpid()} on {socket.gethostname()} ({command})'.encode())
    yield
  finally:
    os.close(fd)  # releases the lock; the file stays (removing it would race with a process waiting on it)
