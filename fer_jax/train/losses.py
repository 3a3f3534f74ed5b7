"""The GAN losses of both trainers, in one place: StyleGAN2's logistic losses and R1 (identity GAN), the
Wasserstein losses with gradient penalty (StarGAN) and GANimation's mask smoothness."""

import jax
import jax.numpy as jnp


def logistic_d(logits_real, logits_fake):
  """The critic's non-saturating logistic loss: real faces up, fakes down."""
  return jnp.mean(jax.nn.softplus(logits_fake)) + jnp.mean(jax.nn.softplus(-logits_real))


def logistic_g(logits_fake):
  """The generator's non-saturating logistic loss."""
  return jnp.mean(jax.nn.softplus(-logits_fake))


def r1(critic, real):
  """R1 (Mescheder et al. 2018): the mean squared gradient norm of `critic` (images -> logits) at real faces."""
  grad = jax.grad(lambda x: critic(x).sum())(real)
  return jnp.mean(jnp.sum(jnp.square(grad), axis=(1, 2, 3)))


def gradient_penalty(critic, real, fake, alpha):
  """WGAN-GP (Gulrajani et al. 2017): (|grad critic| - 1)^2 at points `alpha` of the way from fake to real."""
  x_hat = alpha * real + (1.0 - alpha) * fake
  grad = jax.grad(lambda x: critic(x).sum())(x_hat)
  norm = jnp.sqrt(jnp.sum(grad.reshape(grad.shape[0], -1) ** 2, axis=1) + 1e-12)
  return jnp.mean((norm - 1.0) ** 2)


def total_variation(mask):
  """Mean absolute difference of neighbouring mask values (GANimation's smoothness term)."""
  return jnp.abs(mask[:, 1:] - mask[:, :-1]).mean() + jnp.abs(mask[:, :, 1:] - mask[:, :, :-1]).mean()
