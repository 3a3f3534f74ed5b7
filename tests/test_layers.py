"""Any custom convolution path must compute exactly what lax.conv_general_dilated computes."""
import flax.linen as nn
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


def _values_and_grads_match(f, g, x, kernel, tol=1e-4):
  a, b = f(x, kernel), g(x, kernel)
  assert a.shape == b.shape
  np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
  cot = jax.random.normal(jax.random.key(7), a.shape)
  loss = lambda h: lambda x, w: jnp.sum(h(x, w) * cot)
  for u, v in zip(jax.grad(loss(f), argnums=(0, 1))(x, kernel), jax.grad(loss(g), argnums=(0, 1))(x, kernel)):
    np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


@pytest.mark.parametrize('shape,k,padding', [((2, 8, 8, 3), 4, 1), ((2, 9, 7, 3), 4, 1), ((1, 10, 10, 2), 4, 0),
                                             ((2, 12, 12, 3), 2, 0), ((1, 8, 8, 2), 4, ((1, 2), (0, 1)))])
def test_stride2_rewrite_matches_xla_conv_values_and_gradients(shape, k, padding):
  kx, kk = jax.random.split(jax.random.key(0))
  x, kernel = jax.random.normal(kx, shape), jax.random.normal(kk, (k, k, shape[-1], 5))
  _values_and_grads_match(lambda x, w: layers.conv_stride2_im2col(x, w, padding),
                          lambda x, w: layers.conv_xla(x, w, padding, 2), x, kernel)


@pytest.mark.parametrize('shape', [(2, 4, 4, 3), (1, 5, 3, 2)])
def test_transposed_rewrite_matches_lax_conv_transpose_values_and_gradients(shape):
  kx, kk = jax.random.split(jax.random.key(0))
  x, kernel = jax.random.normal(kx, shape), jax.random.normal(kk, (4, 4, shape[-1], 5))
  _values_and_grads_match(layers.conv_transpose_x2_im2col, layers.conv_transpose_xla, x, kernel)
  # ... and the modules are drop-in for flax's (same parameter tree, same function).
  flax_ct = nn.ConvTranspose(5, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))
  params = flax_ct.init(jax.random.key(1), x)
  ours = layers.ConvTranspose(5, impl='im2col')
  assert jax.tree.structure(params) == jax.tree.structure(ours.init(jax.random.key(1), x))
  np.testing.assert_allclose(ours.apply(params, x), flax_ct.apply(params, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('n', [6, 7])
def test_blocked_im2col_matches_xla_conv_values_and_gradients(n):
  # A block budget of ~2 images' patches forces the loop (blocks of 2 for n=6, of 1 for prime n=7).
  kx, kk, kb = jax.random.split(jax.random.key(0), 3)
  x, kernel, bias = jax.random.normal(kx, (n, 10, 10, 3)), jax.random.normal(kk, (3, 3, 3, 4)), jax.random.normal(kb, (4,))
  per_image = 8 * 8 * 27 * 4
  _values_and_grads_match(lambda x, w: layers.conv_im2col_blocked(x, w, 'VALID', bias, block_bytes=2 * per_image),
                          lambda x, w: layers.conv_xla(x, w) + bias, x, kernel)


def test_max_pool_2x2_equals_flax_max_pool():
  x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3))  # an odd side drops its last row, as VALID does
  np.testing.assert_array_equal(layers.max_pool_2x2(x), nn.max_pool(x, (2, 2), strides=(2, 2)))


def test_dropout_keeps_the_rate_scales_and_is_deterministic_per_key():
  x = jnp.ones((64, 30, 30, 64))
  for rate in (0.25, 0.5):
    drop = layers.Dropout(rate)
    y = drop.apply({}, x, rngs={'dropout': jax.random.key(0)})
    kept = np.asarray(y != 0)
    assert abs(kept.mean() - (1 - rate)) < 0.005
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(y, drop.apply({}, x, rngs={'dropout': jax.random.key(0)}))
    assert (y != drop.apply({}, x, rngs={'dropout': jax.random.key(1)})).any()
  np.testing.assert_array_equal(layers.Dropout(0.5, deterministic=True).apply({}, x), x)
  with pytest.raises(ValueError, match='multiple of 1/256'):
    layers.Dropout(0.3).apply({}, x, rngs={'dropout': jax.random.key(0)})
