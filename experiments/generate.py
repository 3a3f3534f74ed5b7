"""Synthetic training sets from the GANs trained in WORKDIR (WORKDIR/gan{G}/identity_gan, .../expression_gan).

  python -m experiments.generate --config=configs/default.py:quick --workdir=runs/quick

Writes, for each GAN replicate G of config.sweep.gan_seeds (and each value of the sweep.axes keys a set depends
on), one nested TFDS set (ArrayRecord) large enough for the largest of config.sweep.multiples and prints its
folder, to be used as `--config.classifier.synthetic_source=synthetic:FOLDER`.
"""

from fer_jax import sweep
from fer_jax.infra import cli


def _generate(config, workdir):
  for key, folder in sweep.generate_synthetic(config, workdir).items():
    print(f'{"GAN replicate " if isinstance(key, int) else ""}{key}: {folder}')


if __name__ == '__main__':
  cli.main(_generate)
