"""Expression GAN (StarGAN): architecture = the PyTorch peer's, training contracts, evaluation outputs."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.default import get_config
from fer_jax.data import emotions
from fer_jax.data import pool as pool_lib
from fer_jax.infra.checkpointing import Checkpointer
from fer_jax.infra.errors import UserError
from fer_jax.models import layers, stargan
from fer_jax.train import expression_gan as eg
from fer_jax.train import generators
from tests.conftest import run_processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# `python torch_peers.py stargan` (torch 2.13.0) at conv_dim=64, repeat_num=6, d_repeat_num=5, 64x64x1,
# c_dim=7: G 8,424,256 + D 11,182,016.
PEER_PARAMS_PAPER = 19_606_272


def _tiny(data_dir, **overrides):
  c = get_config('tiny')
  c.data.data_dir = str(data_dir)
  for k, v in overrides.items():
    setattr(c.expression_gan, k, v)
  return c


@pytest.fixture(scope='module')
def reference(tmp_path_factory, data_dir):
  """One uninterrupted tiny train_and_evaluate run on this process's (single) device."""
  workdir = str(tmp_path_factory.mktemp('eg_ref'))
  config = _tiny(data_dir)
  metrics = eg.train_and_evaluate(config, workdir)
  return config, workdir, metrics


def _restore(config, workdir):
  with Checkpointer(os.path.join(workdir, 'checkpoints')) as ck:
    state, meta = ck.restore(eg.state_template(config))
  return jax.tree.map(np.asarray, state), meta


def _run_train(workdir, data_dir, devices=1, kill_after_first_checkpoint=False):
  """`expression_gan.train` on the tiny preset in a fresh process with `devices` forced CPU devices."""
  code = f"""
import os, signal
from configs.default import get_config
from fer_jax.infra import checkpointing
from fer_jax.train import expression_gan as eg
if {kill_after_first_checkpoint!r}:
  save = checkpointing.Checkpointer.save
  def save_then_die(self, *a, **k):
    save(self, *a, **k)
    os.kill(os.getpid(), signal.SIGKILL)
  checkpointing.Checkpointer.save = save_then_die
c = get_config('tiny')
c.data.data_dir = {str(data_dir)!r}
import jax
assert jax.device_count() == {devices}, jax.devices()
eg.train(c, {str(workdir)!r})
"""
  env = dict(
    os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}', JAX_PLATFORMS='cpu', PYTHONPATH=ROOT
  )
  return subprocess.run([sys.executable, '-c', code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_param_count_equals_torch_peer_at_paper_settings():
  config = get_config('paper')
  assert (
    config.expression_gan.conv_dim,
    config.expression_gan.repeat_num,
    config.expression_gan.d_repeat_num,
    config.data.image_size,
  ) == (64, 6, 5, 64)
  hp = eg.hparams(config)
  g, d = eg.models(hp)
  x = jnp.zeros((2, 64, 64, 1))
  pg = jax.eval_shape(g.init, jax.random.key(0), x, jnp.zeros((2, 7)))
  pd = jax.eval_shape(d.init, jax.random.key(0), x)
  assert layers.count_params(pg) == 8_424_256
  assert layers.count_params(pd) == 11_182_016
  assert layers.count_params(pg) + layers.count_params(pd) == PEER_PARAMS_PAPER
  # Same output shapes as the peer: image out, 2x2 patch scores, 7 class logits.
  assert jax.eval_shape(g.apply, pg, x, jnp.zeros((2, 7))).shape == (2, 64, 64, 1)
  src, cls = jax.eval_shape(d.apply, pd, x)
  assert src.shape == (2, 2, 2, 1) and cls.shape == (2, 7)


def test_transposed_conv_doubles_like_pytorch():
  # PyTorch ConvTranspose2d(4, 2, 1): 2x output. The upsampling path must give back the input size.
  g = stargan.Generator(1, 4, 7, 1, attention=False, conv_impl='xla')
  for size in (16, 32, 64):
    x = jnp.zeros((1, size, size, 1))
    p = jax.eval_shape(g.init, jax.random.key(0), x, jnp.zeros((1, 7)))
    assert jax.eval_shape(g.apply, p, x, jnp.zeros((1, 7))).shape == (1, size, size, 1)


def test_train_and_evaluate_writes_metrics_and_grid(reference):
  config, workdir, metrics = reference
  on_disk = json.load(open(os.path.join(workdir, 'metrics.json')))
  assert on_disk['step'] == config.expression_gan.steps
  for k in ('judged_target_accuracy', 'identity_kept', 'judge_real_holdout_accuracy'):
    assert 0.0 <= on_disk[k] <= 1.0, (k, on_disk[k])
  assert np.isfinite(on_disk['cycle_l1']) and on_disk['cycle_l1'] > 0
  assert on_disk['num_translated'] == 7 * on_disk['num_holdout_faces']
  pool = pool_lib.load_pool(config, workdir)
  assert on_disk['num_holdout_subjects'] == pool.describe()['holdout_subjects'] >= 2
  assert on_disk['num_holdout_faces'] == len(pool.holdout_idx)
  assert metrics['params'] == on_disk['params'] > 0
  gt = on_disk['ground_truth']  # the tiny pool is procedural: every held-out face against its own photo
  assert gt['available'] and gt['num_faces'] == on_disk['num_holdout_faces']
  assert gt['num_pairs'] == 6 * gt['num_faces']  # every target but the face's own emotion
  for k in ('l1', 'l1_do_nothing', 'l1_blurred_input', 'judge_on_truth', 'judge_on_translations'):
    assert 0.0 < gt[k] < 1.0, (k, gt[k])
  assert gt['l1'] > gt['l1_do_nothing']  # 4 steps of training do not beat copying the input
  assert list(gt['per_target']) == list(emotions.EMOTIONS)
  from PIL import Image  # pylint: disable=import-outside-toplevel

  with Image.open(os.path.join(workdir, 'samples', 'expressions.png')) as im:
    assert im.size[0] > im.size[1] > 100  # 8 columns (input + 7 targets) by 3 rows


def test_translate_api_is_deterministic_and_keeps_dtype(reference, data_dir):
  config, workdir, _ = reference
  params = generators.load_expression(workdir, config)
  translate = generators.make_translate_fn(config)
  pool = pool_lib.load_pool(config, workdir)
  faces = pool.images[pool.holdout_idx[:4]]
  targets = np.array([0, 3, 5, 6], np.int32)
  told = generators.conditions(config, pool, targets, np.arange(4), seed=0)  # quick's (and tiny's): AUs
  assert told.shape == (4, emotions.NUM_AUS)
  a, b = translate(params, faces, told), translate(params, faces, told)
  assert a.dtype == np.uint8 and a.shape == faces.shape
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  f = translate(params, faces.astype(np.float32) / 127.5 - 1, told)
  assert f.dtype == np.float32 and float(jnp.abs(f).max()) <= 1.0
  # Told an emotion, class indices and one-hot rows are the same request.
  emotion = _tiny(data_dir, condition='emotion')
  g_params = eg.compiled(eg.hparams(emotion)).init(0).g_ema
  translate = generators.make_translate_fn(emotion)
  np.testing.assert_array_equal(
    np.asarray(translate(g_params, faces, targets)), np.asarray(translate(g_params, faces, jax.nn.one_hot(targets, 7)))
  )


def test_two_processes_of_two_devices_train_and_evaluate_as_one_device(reference, tmp_path, data_dir):
  """4 devices in 2 jax.distributed processes (2 forced CPU devices each: multi-host and multi-device at once),
  each process reading its rows of every global batch, train as the one-device reference does, and the held-out
  evaluation (judge, identity net and translations, fed from both processes) scores the same images."""
  config, ref_dir, _ = reference
  work = tmp_path / 'two'
  code = f"""
from configs.default import get_config
from fer_jax.infra import parallel
from fer_jax.train import expression_gan as eg
parallel.initialize_distributed()
import jax
from fer_jax.models import layers
assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
c = get_config('tiny')
c.data.data_dir = {str(data_dir)!r}
eg.train_and_evaluate(c, {str(work)!r})
"""
  run_processes(['-c', code], devices=2, timeout=400)
  ref, ref_meta = _restore(config, ref_dir)
  two, two_meta = _restore(config, work)
  assert int(two.step) == int(ref.step) == config.expression_gan.steps
  for k in ('d_loss', 'g_rec', 'g_cls'):
    np.testing.assert_allclose(two_meta['scalars'][k], ref_meta['scalars'][k], rtol=1e-3, atol=1e-5)
  # gp = (|grad| - 1)^2 near its minimum amplifies summation-order noise in |grad| ~10x: compare |grad| - 1.
  np.testing.assert_allclose(np.sqrt(two_meta['scalars']['gp']), np.sqrt(ref_meta['scalars']['gp']), rtol=2e-3)
  a = np.concatenate([x.ravel() for x in jax.tree.leaves((two.g_params, two.d_params, two.g_ema))])
  b = np.concatenate([x.ravel() for x in jax.tree.leaves((ref.g_params, ref.d_params, ref.g_ema))])
  # Adam's first steps move a weight by ~lr * sign(grad): where a gradient is a near-cancelling sum over
  # the batch, the all-reduce's different summation order can flip that sign. So: almost every weight
  # equal, and none further apart than a few Adam steps.
  diff = np.abs(a - b)
  assert np.mean(diff <= 1e-5) >= 0.97, np.mean(diff <= 1e-5)
  lr = max(config.expression_gan.g_lr, config.expression_gan.d_lr)
  assert diff.max() <= 2 * config.expression_gan.steps * lr, diff.max()
  m_ref, m_two = (json.load(open(os.path.join(d, 'metrics.json'))) for d in (ref_dir, work))
  for k in ('num_translated', 'num_holdout_faces', 'num_holdout_subjects', 'judge_real_holdout_accuracy'):
    assert m_two[k] == m_ref[k], k  # the same held-out faces, each once, and the same judge
  np.testing.assert_allclose(m_two['cycle_l1'], m_ref['cycle_l1'], rtol=1e-3)


def test_kill_and_rerun_gives_the_uninterrupted_state(reference, tmp_path, data_dir):
  config, ref_dir, _ = reference
  workdir = tmp_path / 'killed'
  r = _run_train(workdir, data_dir, devices=1, kill_after_first_checkpoint=True)
  assert r.returncode == -9, (r.returncode, r.stderr[-3000:])
  with Checkpointer(workdir / 'checkpoints') as ck:
    first = ck.latest_step()
  assert first is not None and 0 < first < config.expression_gan.steps
  eg.train(_tiny(data_dir), str(workdir))  # the same command again, in this process
  ref, _ = _restore(config, ref_dir)
  resumed, _ = _restore(config, workdir)
  assert int(resumed.step) == int(ref.step) and int(resumed.g_count) == int(ref.g_count)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-6), resumed, ref)


def test_nan_stops_clearly_and_keeps_last_good_checkpoint(tmp_path, data_dir, monkeypatch):
  config = _tiny(data_dir)
  orig = pool_lib.batches

  def poisoned(ds, bs, seed, start_step, what):
    # From the third batch on, the images are NaN: a corrupt input as it would reach the step.
    for i, b in enumerate(orig(ds, bs, seed, start_step, what)):
      if start_step + i >= 2:
        b = dict(b, image=np.full(b['image'].shape, np.nan, np.float32))
      yield b

  monkeypatch.setattr(pool_lib, 'batches', poisoned)
  workdir = str(tmp_path / 'nan')
  with pytest.raises(FloatingPointError, match=r'diverged by step 4.*last good checkpoint \(step 2\)'):
    eg.train(config, workdir)
  with Checkpointer(os.path.join(workdir, 'checkpoints')) as ck:
    assert ck.all_steps() == [2]
  state, _ = _restore(config, workdir)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves((state.g_params, state.d_params, state.g_ema)))


def test_attention_option_trains_and_logs_mask(tmp_path, data_dir):
  config = _tiny(data_dir, attention=True)
  state, scalars = eg.train(config, str(tmp_path / 'att'))
  assert int(state.step) == config.expression_gan.steps
  assert 0.0 < scalars['mask_mean'] < 1.0
  assert np.isfinite(scalars['mask_reg'])
  assert 'to_mask' in state.g_params['params'] and 'to_colour' in state.g_params['params']
  told = np.zeros((2, emotions.NUM_AUS), np.float32)
  _, mask = generators.translate_all(config, state.g_ema, np.zeros((2, 32, 32, 1), np.uint8), told)
  assert mask.shape == (2, 32, 32, 1) and ((mask >= 0) & (mask <= 1)).all()


@pytest.mark.parametrize('fraction', [0.0, 0.95, 1.0])
def test_bad_holdout_is_a_user_error(data_dir, tmp_path, fraction):
  config = _tiny(data_dir)
  config.data.pool_holdout_fraction = fraction
  with pytest.raises(UserError, match=r'data.pool_holdout_fraction=.* of 12 pool subjects'):
    pool_lib.load_pool(config, str(tmp_path))


def _random_batch(n, size, condition, lambda_pair=0.0, has_pair=(1, 0, 1, 1), seed=0):
  rng = np.random.default_rng(seed)
  batch = {
    'image': rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8),
    'label': rng.integers(0, 7, (n,)).astype(np.int32),
  }
  if condition == 'aus':
    batch['aus'] = rng.uniform(0, 1, (n, emotions.NUM_AUS)).astype(np.float32)
  if lambda_pair:  # what pool.Pairs.draw adds
    batch['pair_image'] = rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8)
    batch['pair_label'] = rng.integers(0, 7, (n,)).astype(np.int32)
    batch['pair_aus'] = rng.uniform(0, 1, (n, emotions.NUM_AUS)).astype(np.float32)
    batch['has_pair'] = np.asarray(has_pair, np.float32)
  return batch


@pytest.mark.parametrize(
  'attention,lambda_id,cls_augment,condition,lambda_pair,pair_shift',
  [
    (False, 0.0, False, 'emotion', 0.0, 0),
    (True, 10.0, True, 'emotion', 0.0, 0),
    (True, 10.0, True, 'aus', 0.0, 0),
    (True, 10.0, True, 'aus', 5.0, 1),  # the paired loss aligned (pair_shift)
  ],
)
def test_fused_step_equals_critic_then_plain_generator_step(
  attention, lambda_id, cls_augment, condition, lambda_pair, pair_shift
):
  # dg_step reuses the critic's G(x, c_trg) pass and its VJP; it must give what d_step followed by the
  # plainly differentiated g_step gives (same batch, same targets).
  config = get_config('tiny')
  config.expression_gan.attention, config.expression_gan.lambda_id = attention, lambda_id
  config.expression_gan.cls_augment, config.expression_gan.condition = cls_augment, condition
  config.expression_gan.lambda_pair, config.expression_gan.pair_shift = lambda_pair, pair_shift
  steps = eg.compiled(eg.hparams(config))
  batch = _random_batch(4, config.data.image_size, condition, lambda_pair)
  fused, (d_fused, g_fused) = steps.dg(steps.init(0), batch)
  plain, d_plain = steps.d(steps.init(0), batch)
  plain, g_plain = steps.g(plain, batch)
  for a, b in ((d_fused, d_plain), (g_fused, g_plain)):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), fused.g_params, steps.init(0).g_params)
  assert max(jax.tree.leaves(moved)) > 0  # the generator was updated at all
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), fused, plain)


def test_cpu_conv_rewrites_keep_the_stargan_function():
  # conv_impl='cpu' (strided and transposed convs rewritten, the critic on matmuls) is the same function
  # with the same params.
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 1), minval=-1, maxval=1)
  c = jax.nn.one_hot(jnp.array([1, 5]), 7)
  g_xla = stargan.Generator(1, 8, 7, 1, attention=False, conv_impl='xla')
  g_cpu = stargan.Generator(1, 8, 7, 1, attention=False, conv_impl='cpu')
  d_xla, d_cpu = stargan.Discriminator(32, 8, 7, 3, 'xla'), stargan.Discriminator(32, 8, 7, 3, 'cpu')
  pg, pd = g_xla.init(jax.random.key(0), x, c), d_xla.init(jax.random.key(2), x)
  assert jax.tree.structure(pg) == jax.tree.structure(g_cpu.init(jax.random.key(0), x, c))
  np.testing.assert_allclose(g_cpu.apply(pg, x, c), g_xla.apply(pg, x, c), rtol=1e-4, atol=1e-5)
  for a, b in zip(d_cpu.apply(pd, x), d_xla.apply(pd, x)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_au_condition_trains_on_action_units_and_is_scored_with_the_truths(tmp_path, data_dir):
  # GANimation's conditioning: G is told a vector of AU intensities, the critic regresses them; the ground
  # truth is scored with G told the truth's own AUs, and the grid's rows likewise.
  config = _tiny(data_dir, condition='aus')
  workdir = str(tmp_path / 'aus')
  metrics = eg.train_and_evaluate(config, workdir)
  assert 'd_real_au_mae' in metrics['final_train_scalars'] and 'd_real_acc' not in metrics['final_train_scalars']
  gt = metrics['ground_truth']
  assert gt['available'] and 0.0 < gt['l1'] < 1.0 and 0.0 < gt['judge_on_translations'] < 1.0
  params = generators.load_expression(workdir, config)
  assert params['params']['Conv_0']['kernel'].shape[2] == 1 + emotions.NUM_AUS  # image + AU channels
  pool = pool_lib.load_pool(config, workdir)
  faces = pool.images[pool.holdout_idx[:3]]
  told = generators.conditions(config, pool, np.array([0, 3, 6]), np.arange(3), seed=0)
  out, _ = generators.translate_all(config, params, faces, told)
  assert out.dtype == np.uint8 and out.shape == faces.shape
  samples = eg.sample_faces(config, pool)
  assert samples.truth is not None and samples.told.shape == (7 * len(samples.faces), emotions.NUM_AUS)
  # the picture's truth rows and the translations above them are told the same AUs
  by_target = samples.told.reshape(len(samples.faces), 7, -1)
  assert np.all(by_target[:, emotions.NEUTRAL] <= 0.25)  # neutral: background activity only
  assert np.all(by_target[:, emotions.EMOTIONS.index('happiness'), emotions.AU_INDEX[12]] > 0.1)


def test_au_targets_are_real_faces_aus_keyed_by_id(tiny, tmp_path):
  pool = pool_lib.load_pool(tiny, str(tmp_path))
  targets, ids = np.array([0, 3, 3, 6, 0]), np.array([10, 11, 12, 13, 14])
  tiny.expression_gan.condition = 'emotion'
  np.testing.assert_array_equal(generators.conditions(tiny, pool, targets, ids, seed=0), targets)
  tiny.expression_gan.condition = 'aus'
  told = generators.conditions(tiny, pool, targets, ids, seed=0)
  train_aus, train_labels = pool.aus[pool.train_idx], pool.labels[pool.train_idx]
  for row, t in zip(told, targets):  # each the AUs of a training face of the target emotion
    assert any(np.array_equal(row, a) for a in train_aus[train_labels == t])
  again = generators.conditions(tiny, pool, targets[::-1], ids[::-1], seed=0)  # id-keyed, not order-keyed
  np.testing.assert_array_equal(again[::-1], told)
  assert not np.array_equal(generators.conditions(tiny, pool, targets, ids, seed=1), told)
  without = dataclasses.replace(pool, aus=None)
  with pytest.raises(UserError, match="condition='aus' needs action units"):
    generators.conditions(tiny, without, targets, ids, seed=0)
  tiny.data.pool_sources = 'rafd:/data/RaFD'  # refused before anything runs, not when the pool loads
  with pytest.raises(UserError, match=r"condition='aus' needs action units.*rafd faces without them.*=emotion"):
    eg.check_config(tiny)
  tiny.expression_gan.condition = 'au'
  with pytest.raises(UserError, match=r"expression_gan.condition='au'; expected one of emotion, aus"):
    eg.hparams(tiny)


def test_pairs_are_the_same_person_in_another_expression_drawn_reproducibly(tiny, tmp_path):
  """pool.Pairs: every partner is a training face of the same subject with another label; a step's draw depends on
  (seed, step) and the row's place in the batch alone; a pool where nobody has a second expression has none."""
  pool = pool_lib.load_pool(tiny, str(tmp_path))
  pairs = pool_lib.Pairs(pool, seed=0)
  assert pairs.share == 1.0  # the procedural pool holds every subject in every expression
  subjects, labels = pool.train_subjects, pool.labels[pool.train_idx]
  for j, partners in enumerate(pairs.partners):
    assert len(partners) and (subjects[partners] == subjects[j]).all() and (labels[partners] != labels[j]).all()
  index = np.arange(8)
  a, b, other = pairs.draw(index, 3, 8, True), pairs.draw(index, 3, 8, True), pairs.draw(index, 4, 8, True)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a['pair_image'], other['pair_image'])
  assert a['has_pair'].all() and (a['pair_label'] != labels[index]).all()
  loners = dataclasses.replace(pool, subjects=np.arange(len(pool.subjects)))  # one face per person
  none = pool_lib.Pairs(loners, seed=0)
  assert none.share == 0.0 and not none.draw(index, 3, 8)['has_pair'].any()


def test_paired_loss_reads_the_expression_not_the_photo():
  """The partner is another photo: its brightness and contrast cost nothing, its sensor noise a fraction of what a
  mouth that opens costs."""
  y, x = np.mgrid[0:32, 0:32] / 31 * 2 - 1
  eyes = sum(np.exp(-((x - dx) ** 2 + (y + 0.3) ** 2) / 0.02) for dx in (-0.35, 0.35))
  face = jnp.asarray((0.5 * np.exp(-(x**2 / 0.5 + y**2 / 0.8)) - 0.3 * eyes - 0.2)[None, :, :, None], jnp.float32)
  noise = 0.03 * jnp.asarray(np.random.default_rng(0).standard_normal(face.shape), jnp.float32)
  has = jnp.ones((1,))
  photo, noisy, mouth = 0.7 * face + 0.2, 0.7 * face + 0.2 + noise, face.at[:, 20:24, 12:20].set(-1.0)
  same, other_photo, noisy_photo, other_mouth = (
    float(eg.pair_loss(face, (p, has), 2)) for p in (face, photo, noisy, mouth)
  )
  assert same < 1e-6 and other_photo < 1e-4 and noisy_photo < other_mouth / 3, (other_photo, noisy_photo, other_mouth)
  assert float(eg.pair_loss(face, (mouth, jnp.zeros((1,))), 2)) == 0.0  # no partner: no paired loss


def test_aligned_paired_loss_forgives_where_the_photo_sits_not_the_expression():
  """pair_shift: a partner two pixels (one 2x2 cell) lower costs nothing once aligned, and as much as a mouth does
  unaligned; an open mouth still costs as much aligned as unaligned."""
  y, x = np.mgrid[0:32, 0:32] / 31 * 2 - 1
  eyes = sum(np.exp(-((x - dx) ** 2 + (y + 0.3) ** 2) / 0.02) for dx in (-0.35, 0.35))
  face = jnp.asarray((0.5 * np.exp(-(x**2 / 0.5 + y**2 / 0.8)) - 0.3 * eyes - 0.2)[None, :, :, None], jnp.float32)
  lower, mouth, has = jnp.roll(face, 2, axis=1), face.at[:, 20:24, 12:20].set(-1.0), jnp.ones((1,))
  loss = lambda partner, shift: float(eg.pair_loss(face, (partner, has), 2, shift))
  assert loss(lower, 1) < 1e-6 < loss(mouth, 0) / 3 < loss(lower, 0), (loss(lower, 1), loss(lower, 0), loss(mouth, 0))
  assert loss(mouth, 1) > 0.5 * loss(mouth, 0), (loss(mouth, 1), loss(mouth, 0))


def test_without_partners_the_paired_step_is_the_unpaired_one():
  """A batch in which no face has a partner (a pool without pairs) trains as with lambda_pair = 0."""
  states = []
  for lambda_pair in (0.0, 5.0):
    config = get_config('tiny')
    config.expression_gan.lambda_pair = lambda_pair
    steps = eg.compiled(eg.hparams(config))
    batch = _random_batch(4, config.data.image_size, config.expression_gan.condition, 5.0, has_pair=(0, 0, 0, 0))
    if not lambda_pair:
      batch = {k: v for k, v in batch.items() if not k.startswith(('pair', 'has'))}
    states.append(steps.dg(steps.init(0), batch))
  (unpaired, (d0, g0)), (paired, (d1, g1)) = states
  assert g1.pop('g_pair') == 0.0
  for a, b in ((d0, d1), (g0, g1)):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_allclose(a[k], b[k], rtol=1e-6, err_msg=k)
  # The gradients, as Adam's first moments (its first update is ~lr x sign(gradient) whatever the gradient's size,
  # so the parameters would hide a difference): equal up to float summation order.
  for a, b in ((unpaired.g_opt, paired.g_opt), (unpaired.d_opt, paired.d_opt)):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5 * np.abs(y).max()), a, b)


def test_paired_training_logs_its_loss(tmp_path, data_dir):
  config = _tiny(data_dir, lambda_pair=5.0)
  state, scalars = eg.train(config, str(tmp_path / 'paired'))
  assert int(state.step) == config.expression_gan.steps and np.isfinite(scalars['g_pair']) and scalars['g_pair'] > 0


@pytest.mark.parametrize(
  'key,value,expected',
  [
    ('lambda_pair', -1.0, 'expected a number >= 0'),
    ('pair_pool', 3, 'does not divide data.image_size=32'),
    ('pair_shift', -1, 'expected a whole number >= 0'),
    ('pair_shift', 8, 'leaves nothing to compare at 16x16'),
  ],
)
def test_bad_pair_settings_are_one_line(key, value, expected):
  config = get_config('tiny')
  setattr(config.expression_gan, key, value)
  with pytest.raises(UserError, match=expected):
    eg.hparams(config)
