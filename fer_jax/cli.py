"""The one way an entry point starts: absl flags, `--config` (ml_collections), `--workdir`, clean errors.

Every `experiments/NAME.py` is `cli.main(library_function)`: it parses `--config=configs/default.py:PRESET`
with overrides (`--config.classifier.lr=3e-4`) and `--workdir=DIR`, then calls `library_function(config,
workdir)`. A bad override, a misspelt key or a bad input raises; the user sees one line naming it.
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from fer_jax.errors import UserError
from fer_jax.train import parallel

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/default.py:quick',
                                          'Config file and preset, e.g. configs/default.py:quick.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for datasets, checkpoints and results.')


def _parse(argv):
  try:
    return flags.FLAGS(argv)
  except (KeyError, AttributeError, TypeError, ValueError, flags.Error) as e:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    raise SystemExit(f'error: bad flag or config override: {msg}'.replace('\n', ' ')) from None


def main(fn, require_workdir=True):
  """Runs `fn(config, workdir)` as a command-line program."""
  def _main(argv):
    del argv
    if require_workdir and not _WORKDIR.value:
      raise SystemExit('error: --workdir is required (where results and checkpoints go)')
    parallel.initialize_distributed()
    try:
      fn(_CONFIG.value, _WORKDIR.value)
    except (UserError, FileNotFoundError) as e:
      logging.flush()
      raise SystemExit(f'error: {e}') from None
  app.run(_main, flags_parser=_parse)


if __name__ == '__main__':
  sys.exit('run an entry point in experiments/, e.g. python -m experiments.sweep')
