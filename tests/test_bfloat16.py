"""bfloat16 compute (the paper preset's, for GPUs/TPUs) against float32: one train step of each network from the
same init on the same batch gives the same losses and metrics and nearly the same gradients (read from Adam's
first moment, which after one update is (1 - b1) * the gradient), and the state stays float32.

The tolerances (below) were measured on CPU at these shapes and leave about 3x room; bfloat16 keeps 8 bits of
mantissa (relative rounding 2^-9 per operation), which through a dozen layers gives the percent-level gradient
errors measured. `python -m pytest -s` prints every comparison.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from fer_jax.data import emotions
from fer_jax.infra import parallel
from fer_jax.train import classifier, expression_gan, identity_gan, losses

DTYPES = ('float32', 'bfloat16')
# Tolerances (bfloat16 against float32, one step from the same init), with what was measured at these shapes:
METRIC_RTOL = 2e-2  # losses and means of scores: measured <6e-3
METRIC_ATOL = 1e-3  # for those near 0 (a critic's mean score at init)
GP_RTOL = 0.1  # the expression GAN's WGAN-GP (always float32: `gradient_penalty`) at bfloat16's fake: measured 3.5e-2
NORM_RTOL = 5e-2  # gradient norms: measured <1.4e-2
GRAD_RTOL = 0.25  # a network's whole gradient, relative L2 error: measured 1.2-8.8e-2 (a wrong one: ~1)


def _adam_mu(opt_state):
  """The first moment of the one Adam in `opt_state`: after one update from init, (1 - b1) * the gradient."""
  (adam,) = [x for x in jax.tree.leaves(opt_state, is_leaf=_is_adam) if _is_adam(x)]
  return adam.mu


def _is_adam(x):
  return isinstance(x, optax.ScaleByAdamState)


def _flat(tree):
  return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def _check(metrics, grads, states):
  """{dtype: step metrics}, {dtype: {part: gradient}}, {dtype: state}: bfloat16's against float32's."""
  for x in jax.tree.leaves(states['bfloat16']):
    assert not jnp.issubdtype(x.dtype, jnp.floating) or x.dtype == jnp.float32, x.dtype
  m32, m16 = metrics['float32'], metrics['bfloat16']
  assert m32.keys() == m16.keys()
  for k in m32:
    if 'accuracy' in k:  # argmax of near-tied logits at init: a count, not a precision
      continue
    rtol = NORM_RTOL if 'grad_norm' in k else GP_RTOL if k.endswith("['gp']") else METRIC_RTOL
    print(f'{k}: f32 {m32[k]:.6g} bf16 {m16[k]:.6g} rel {abs(m16[k] - m32[k]) / max(abs(m32[k]), 1e-12):.2e}')
    np.testing.assert_allclose(m16[k], m32[k], rtol=rtol, atol=METRIC_ATOL, err_msg=k)
  for part in grads['float32']:
    g32, g16 = _flat(grads['float32'][part]), _flat(grads['bfloat16'][part])
    rel = np.linalg.norm(g16 - g32) / np.linalg.norm(g32)
    print(f'gradient {part}: relative L2 error {rel:.3f}')
    assert rel < GRAD_RTOL, (part, rel)


def _scalars(m):
  return {jax.tree_util.keystr(k): float(v) for k, v in jax.tree_util.tree_leaves_with_path(m)}


def test_classifier_step():
  c = default.get_config('tiny')
  rng = np.random.default_rng(0)
  size = int(c.data.image_size)
  batch = {
    'image': rng.integers(0, 256, (16, size, size, 1), dtype=np.uint8),
    'label': rng.integers(0, 6, (16,)).astype(np.int32),
  }
  metrics, grads, states = {}, {}, {}
  for dtype in DTYPES:
    with c.unlocked():
      c.classifier.dtype = dtype
    programs = classifier.compiled(classifier.hparams(c))
    state, m = programs.train(programs.init(jax.random.key(0)), parallel.shard_batch(batch), jax.random.key(1))
    metrics[dtype], states[dtype], grads[dtype] = _scalars(m), state, {'cnn': _adam_mu(state.opt_state)}
  _check(metrics, grads, states)


def test_expression_gan_step():
  """One critic step (WGAN-GP) then one generator step (`dg`, what every n_critic-th step runs)."""
  c = default.get_config('tiny')
  rng = np.random.default_rng(0)
  size = int(c.data.image_size)
  batch = parallel.shard_batch(
    {
      'image': rng.integers(0, 256, (8, size, size, 1), dtype=np.uint8),
      'label': rng.integers(0, len(emotions.EMOTIONS), (8,)).astype(np.int32),
      'aus': rng.uniform(0, 1, (8, emotions.NUM_AUS)).astype(np.float32),
      # tiny's paired loss (`pool.Pairs`): half the faces with a partner
      'pair_image': rng.integers(0, 256, (8, size, size, 1), dtype=np.uint8),
      'pair_label': rng.integers(0, len(emotions.EMOTIONS), (8,)).astype(np.int32),
      'pair_aus': rng.uniform(0, 1, (8, emotions.NUM_AUS)).astype(np.float32),
      'has_pair': np.tile(np.float32([1, 0]), 4),
    }
  )
  metrics, grads, states = {}, {}, {}
  init = expression_gan.compiled(expression_gan.hparams(c)).init(0)  # float32 params in both dtypes
  for dtype in DTYPES:
    with c.unlocked():
      c.expression_gan.dtype = dtype
    programs = expression_gan.compiled(expression_gan.hparams(c))
    state, m = programs.dg(jax.tree.map(jnp.copy, init), batch)
    metrics[dtype], states[dtype] = _scalars(m), state
    grads[dtype] = {'generator': _adam_mu(state.g_opt), 'critic': _adam_mu(state.d_opt)}
  _check(metrics, grads, states)


def test_expression_gan_gradient_penalty_runs_in_float32():
  """The WGAN-GP and its parameter gradient are float32's exactly under bfloat16 compute (`gradient_penalty`);
  the same penalty through the bfloat16 critic is not (why it is split off)."""
  c = default.get_config('tiny')
  rng = np.random.default_rng(0)
  size = int(c.data.image_size)
  x, fake = (jnp.asarray(rng.uniform(-1, 1, (8, size, size, 1)), jnp.float32) for _ in range(2))
  alpha = jnp.asarray(rng.uniform(0, 1, (8, 1, 1, 1)), jnp.float32)
  d_params = jax.device_get(expression_gan.compiled(expression_gan.hparams(c)).init(0).d_params)
  hps = {}
  for dtype in DTYPES:
    with c.unlocked():
      c.expression_gan.dtype = dtype
    hps[dtype] = expression_gan.hparams(c)
  gp = {d: jax.value_and_grad(expression_gan.gradient_penalty)(d_params, x, fake, alpha, hp) for d, hp in hps.items()}
  assert float(gp['bfloat16'][0]) == float(gp['float32'][0])
  for a, b in zip(jax.tree.leaves(gp['float32'][1]), jax.tree.leaves(gp['bfloat16'][1])):
    np.testing.assert_array_equal(a, b)

  _, critic16 = expression_gan.models(hps['bfloat16'])
  penalty16 = lambda p: losses.gradient_penalty(lambda xh: critic16.apply(p, xh)[0], x, fake, alpha)
  g16 = jax.grad(penalty16)(d_params)
  rel = np.linalg.norm(_flat(g16) - _flat(gp['float32'][1])) / np.linalg.norm(_flat(gp['float32'][1]))
  print(f'WGAN-GP parameter gradient through the bfloat16 critic: relative L2 error {rel:.3f}')
  assert rel > 1e-3


def test_identity_gan_step():
  """The main step (D then G) and, from the same init, the R1 step: float32 in both dtypes, so identical."""
  c = default.get_config('tiny')
  with c.unlocked():
    c.data.image_size = 8  # 4 -> 8: every block kind (styled convs, upsample, DBlock, epilogue), compiled fast
  rng = np.random.default_rng(0)
  batch = parallel.shard_batch({'image': rng.integers(0, 256, (8, 8, 8, 1), dtype=np.uint8)})
  nan_step = parallel.replicate(np.int32(-1))
  metrics, grads, states, r1 = {}, {}, {}, {}
  init = parallel.replicate(identity_gan.init_state(c, jax.random.PRNGKey(0)))  # float32 params in both dtypes
  for dtype in DTYPES:
    with c.unlocked():
      c.identity_gan.dtype = dtype
    programs = identity_gan.compiled(identity_gan.hparams(c))
    state, m = programs.train(jax.tree.map(jnp.copy, init), batch, nan_step)
    metrics[dtype], states[dtype] = _scalars(m), state
    grads[dtype] = {'generator': _adam_mu(state.g_opt), 'discriminator': _adam_mu(state.d_opt)}
    after_r1, m_r1 = programs.r1(jax.tree.map(jnp.copy, init), batch, nan_step)
    r1[dtype] = (_scalars(m_r1), jax.tree.map(np.asarray, after_r1.d_params))
  _check(metrics, grads, states)
  assert r1['bfloat16'][0] == r1['float32'][0]
  for a, b in zip(jax.tree.leaves(r1['float32'][1]), jax.tree.leaves(r1['bfloat16'][1])):
    np.testing.assert_array_equal(a, b)


def test_bad_dtype_is_one_clear_error():
  from fer_jax.infra.errors import UserError  # pylint: disable=import-outside-toplevel

  c = default.get_config('tiny')
  with c.unlocked():
    c.identity_gan.dtype = 'float16'
  with pytest.raises(UserError, match=r"identity_gan.dtype='float16'; expected one of float32, bfloat16"):
    identity_gan.hparams(c)
