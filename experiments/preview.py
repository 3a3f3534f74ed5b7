"""Look at the data: WORKDIR/preview.png (subjects x emotions) and WORKDIR/data_stats.json.

python -m experiments.preview --config=configs/default.py:quick --workdir=DIR
"""

from fer_jax.data import preview
from fer_jax.infra import cli

if __name__ == '__main__':
  cli.main(preview.preview)
