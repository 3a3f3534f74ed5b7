"""Any custom convolution path must compute exactly what lax.conv_general_dilated computes."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax.infra import parallel
from fer_jax.models import layers
from fer_jax.models.classifier import PaperCNN


@pytest.mark.parametrize(
  'shape,k,padding',
  [((2, 12, 12, 1), 3, 'VALID'), ((3, 9, 11, 5), 3, 'VALID'), ((2, 10, 10, 4), 3, 'SAME'), ((1, 13, 13, 3), 7, 'SAME')],
)
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
  b = PaperCNN(6, conv_impl='cpu').apply(params, x)
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _values_and_grads_match(f, g, x, kernel, tol=1e-4):
  a, b = f(x, kernel), g(x, kernel)
  assert a.shape == b.shape
  np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
  cot = jax.random.normal(jax.random.key(7), a.shape)
  loss = lambda h: lambda x, w: jnp.sum(h(x, w) * cot)
  for u, v in zip(jax.grad(loss(f), argnums=(0, 1))(x, kernel), jax.grad(loss(g), argnums=(0, 1))(x, kernel)):
    np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


_STRIDE1 = pytest.mark.parametrize('stride1', [layers.conv_xla, layers.conv_im2col], ids=['conv', 'matmul'])


@_STRIDE1
@pytest.mark.parametrize(
  'shape,k,padding',
  [
    ((2, 8, 8, 3), 4, 1),
    ((2, 9, 7, 3), 4, 1),
    ((1, 10, 10, 2), 4, 0),
    ((2, 12, 12, 3), 2, 0),
    ((1, 8, 8, 2), 4, ((1, 2), (0, 1))),
  ],
)
def test_stride2_rewrite_matches_xla_conv_values_and_gradients(stride1, shape, k, padding):
  kx, kk = jax.random.split(jax.random.key(0))
  x, kernel = jax.random.normal(kx, shape), jax.random.normal(kk, (k, k, shape[-1], 5))
  _values_and_grads_match(
    lambda x, w: layers.conv_stride2_s2d(x, w, padding, stride1),
    lambda x, w: layers.conv_xla(x, w, padding, 2),
    x,
    kernel,
  )


@_STRIDE1
@pytest.mark.parametrize('shape', [(2, 4, 4, 3), (1, 5, 3, 2)])
def test_transposed_rewrite_matches_lax_conv_transpose_values_and_gradients(stride1, shape):
  kx, kk = jax.random.split(jax.random.key(0))
  x, kernel = jax.random.normal(kx, shape), jax.random.normal(kk, (4, 4, shape[-1], 5))
  _values_and_grads_match(
    lambda x, w: layers.conv_transpose_x2_phases(x, w, stride1), layers.conv_transpose_xla, x, kernel
  )


@pytest.mark.parametrize('impl', ['stride1', 'im2col'])
def test_modules_are_drop_in_for_flax_with_any_impl(impl):
  # Same parameter tree and the same function as nn.Conv / nn.ConvTranspose, so checkpoints carry over.
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  for theirs, ours in (
    (nn.ConvTranspose(5, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2))), layers.ConvTranspose(5, impl=impl)),
    (
      nn.Conv(5, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1))),
      layers.Conv(5, (4, 4), strides=2, padding=1, impl=impl),
    ),
    (nn.Conv(5, (3, 3), padding='SAME'), layers.Conv(5, (3, 3), padding='SAME', impl=impl)),
  ):
    params = theirs.init(jax.random.key(1), x)
    assert jax.tree.structure(params) == jax.tree.structure(ours.init(jax.random.key(1), x))
    np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='unknown conv impl'):
    layers.Conv(5, impl='im2kol').init(jax.random.key(1), x)


def test_critic_lowering_matches_xla_in_the_gradient_penalty():
  # The im2col critic is differentiated twice: the second-order terms must agree too.
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  conv = lambda impl: layers.Conv(4, (4, 4), strides=2, padding=1, impl=impl)
  params = conv('xla').init(jax.random.key(1), x)

  def penalty_grad(impl):
    def penalty(p):
      g = jax.grad(lambda x: jnp.sum(jnp.tanh(conv(impl).apply(p, x))))(x)
      return jnp.sum(g**2)

    return jax.grad(penalty)(params)

  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), penalty_grad('im2col'), penalty_grad('xla')
  )


def _ynn_convolutions(hlo):
  """Names of the computations holding a convolution that a YNNPACK fusion calls."""
  blocks = re.split(r'\n(?=%|ENTRY)', hlo)
  with_conv = {b.split()[0].lstrip('%') for b in blocks if ' convolution(' in b}
  ynn_calls = set(re.findall(r'calls=%([\w.\-]+).*__ynn_fusion', hlo))
  return with_conv & ynn_calls, with_conv


def test_cpu_programs_use_the_eigen_convolution():
  # parallel.compiler_options must reach the compiler (an unknown value fails the compile) and keep
  # convolutions off YNNPACK, which ran the classifier's 2-4x slower on CPU.
  x, w = jnp.zeros((2, 10, 10, 32)), jnp.zeros((3, 3, 32, 64))
  ynn, with_conv = _ynn_convolutions(parallel.jit(layers.conv_xla).lower(x, w).compile().as_text())
  assert with_conv and not ynn
  if jax.__version_info__[:2] == (0, 10):  # the default this works around (a later jax may change it)
    assert _ynn_convolutions(jax.jit(layers.conv_xla).lower(x, w).compile().as_text())[0]


def test_a_rejected_cpu_option_falls_back_to_xla_defaults(monkeypatch):
  # A later jaxlib that renames the option must still compile (with its defaults), not fail every program.
  monkeypatch.setitem(parallel._CPU_COMPILER_OPTIONS, 'xla_cpu_experimental_ynn_fusion_type', 'NOT_A_FUSION_TYPE')
  parallel._cpu_options_accepted.cache_clear()
  try:
    assert parallel.compiler_options() is None
    assert parallel.jit(lambda x: x * 2)(3.0) == 6.0
  finally:
    parallel._cpu_options_accepted.cache_clear()
