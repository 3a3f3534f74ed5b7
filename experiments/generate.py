"""Synthetic training sets from the GANs trained in WORKDIR (WORKDIR/identity_gan, WORKDIR/expression_gan).

  python -m experiments.generate --config=configs/default.py:quick --workdir=runs/quick

Writes one nested TFDS set (ArrayRecord) large enough for the largest of config.sweep.multiples and prints
its folder, to be used as `--config.classifier.synthetic_source=synthetic:FOLDER`.
"""
from fer_jax import cli, sweep


def _generate(config, workdir):
  print(sweep.generate_synthetic(config, workdir))


if __name__ == '__main__':
  cli.main(_generate)
