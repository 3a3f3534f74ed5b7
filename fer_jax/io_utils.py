"""Result files are written atomically: a temp file in the same folder, then a rename."""
import contextlib
import json
import os
import tempfile


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
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path, text):
  with atomic_path(path) as tmp:
    with open(tmp, 'w') as f:
      f.write(text)


def write_json(path, obj):
  write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_to_builtin) + '\n')


def read_json(path):
  with open(path) as f:
    return json.load(f)


def _to_builtin(x):
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
