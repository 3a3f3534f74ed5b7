"""Trains the expression GAN (StarGAN) on the GAN pool and evaluates it.

python -m experiments.train_expression_gan --config=configs/default.py:quick --workdir=DIR
"""

from fer_jax.infra import cli
from fer_jax.train import expression_gan

if __name__ == '__main__':
  cli.main(expression_gan.train_and_evaluate)
