"""Look at the data: WORKDIR/preview.png (subjects x emotions) and WORKDIR/data_stats.json.

python -m experiments.preview --config=configs/default.py:quick --workdir=DIR
"""

from fer_jax import cli
from fer_jax.data import preview

if __name__ == '__main__':
  cli.main(preview.preview)
