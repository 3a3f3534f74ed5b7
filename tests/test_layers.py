"""Any custom convolution path must compute exactly what lax.conv_general_dilated computes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax.models import layers
from fer_jax.models.classifier import PaperCNN


@pytest.mark.parametrize('shape,k,padding', [((2, 12, 12, 1), 3, 'VALID'), ((3, 9, 11, 5), 3, 'VALID'),
                                             ((2, 10, 10, 4), 3, 'SAME'), ((1, 13, 13, 3), 7, 'SAME')])
def test_im2col_matches_xla_conv_values_and_gradients(shape, k, padding):
  kx, kk, kc = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, shape)
  kernel = jax.random.normal(kk, (k, k, shape[-1], 6))
  a, b = layers.conv_im2col(x, kernel, padding), layers.conv_xla(x, kernel, padding)
  assert a.shape == b.shape
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  cot = jax.random.normal(kc, a.shape)
  loss = lambda f: lambda x, w: jnp.sum(f(x, w, padding) * cot)
  ga = jax.grad(loss(layers.conv_im2col), argnums=(0, 1))(x, kernel)
  gb = jax.grad(loss(layers.conv_xla), argnums=(0, 1))(x, kernel)
  for u, v in zip(ga, gb):
    np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-4)


def test_paper_cnn_is_the_same_function_with_either_conv():
  x = jax.random.uniform(jax.random.key(1), (4, 32, 32, 1))
  params = PaperCNN(6, conv_impl='xla').init(jax.random.key(0), x)
  a = PaperCNN(6, conv_impl='xla').apply(params, x)
  b = PaperCNN(6, conv_impl='im2col').apply(params, x)
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
