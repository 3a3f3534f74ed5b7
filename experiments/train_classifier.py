"""Train and test the paper's CNN on one regime.

  python -m experiments.train_classifier --config=configs/default.py:quick --workdir=DIR \
      [--config.classifier.regime=mixed --config.classifier.multiple=5 \
       --config.classifier.synthetic_source=synthetic:SWEEPDIR/synthetic]

Writes DIR/metrics.json, DIR/confusion.png, TensorBoard logs and checkpoints; rerunning resumes.
"""

from fer_jax.infra import cli
from fer_jax.train import classifier

if __name__ == '__main__':
  cli.main(classifier.train_and_evaluate)
