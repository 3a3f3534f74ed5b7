"""The one way an entry point starts: absl flags, `--config` (ml_collections), `--workdir`, clean errors.

Every `experiments/NAME.py` is `cli.main(library_function)`: it parses `--config=configs/default.py:PRESET`
with overrides (`--config.classifier.lr=3e-4`) and `--workdir=DIR`, then calls `library_function(config,
workdir)`. A bad override, a misspelt key or a bad input raises; the user sees one line naming it.
"""

import ast
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from fer_jax.infra import parallel
from fer_jax.infra.errors import UserError

DEFAULT_CONFIG = 'configs/default.py:quick'
# No default here: with one, config_flags parses the overrides while this module is imported, where a
# misspelt key is a traceback instead of the one line `_parse` gives.
_CONFIG = config_flags.DEFINE_config_file('config', None, f'Config file and preset (default {DEFAULT_CONFIG}).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for datasets, checkpoints and results.')


def _parse(argv):
  if not any(a == '--config' or a.startswith('--config=') for a in argv[1:]):
    argv = [argv[0], f'--config={DEFAULT_CONFIG}', *argv[1:]]
  try:
    return flags.FLAGS(argv)
  except (KeyError, AttributeError, TypeError, ValueError, flags.Error) as e:
    msg = e.args[0] if isinstance(e, (KeyError, AttributeError)) and e.args else str(e)
    msg = msg.args[0] if isinstance(msg, Exception) and msg.args else msg
    try:  # ConfigDict's missing key arrives as the repr of "'key'\nDid you mean ...?"
      msg = ast.literal_eval(msg) if isinstance(msg, str) and msg[:1] in '\'"' else msg
    except (ValueError, SyntaxError):
      pass
    if isinstance(msg, str) and 'Did you mean' in msg:
      msg = 'no config key ' + msg.replace('\nDid you mean', '. Did you mean')
    msg = msg if isinstance(msg, str) else str(msg)
    if 'Traceback (most recent call last)' in msg:  # config_flags quotes the config file's whole traceback
      flag = msg.split(': ', 1)[0]
      last = [line for line in msg.splitlines() if line.strip()][-1].strip()
      msg = f'{flag}: {last.split(": ", 1)[-1]}'
    raise SystemExit(f'error: bad flag or config override: {" ".join(str(msg).split())}') from None


def one_line(e):
  """The message of an expected failure as one line (failed jobs: one line each); an OS error names its file
  and the reason."""
  if isinstance(e, OSError) and not isinstance(e, UserError) and e.filename is not None:
    return f'{e.filename}: {e.strerror or type(e).__name__}'
  if getattr(e, 'failures', None):  # executors.Failed: a line per failed job, each naming its log
    return str(e)
  return ' '.join(str(e).split()) or type(e).__name__


def main(fn, require_workdir=True):
  """Runs `fn(config, workdir)` as a command-line program."""

  def _main(argv):
    del argv
    if require_workdir and not _WORKDIR.value:
      raise SystemExit('error: --workdir is required (where results and checkpoints go)')
    parallel.initialize_distributed()
    try:
      fn(_CONFIG.value, _WORKDIR.value)
    except (UserError, OSError) as e:  # bad input, a divergence, a workdir the OS refuses; a bug keeps its traceback
      logging.flush()
      raise SystemExit(f'error: {one_line(e)}') from None

  app.run(_main, flags_parser=_parse)


if __name__ == '__main__':
  sys.exit('run an entry point in experiments/, e.g. python -m experiments.sweep')
