"""Trains the identity GAN (StyleGAN2-style random faces): python -m experiments.train_identity_gan
--config=configs/default.py:quick --workdir=DIR."""

from fer_jax.infra import cli
from fer_jax.train import identity_gan

if __name__ == '__main__':
  cli.main(identity_gan.train_and_evaluate)
