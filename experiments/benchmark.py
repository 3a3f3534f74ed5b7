"""Throughput of the real train steps (after compilation), one JSON line per model.

Each network's line also holds its roofline: `gflop_per_s` (the FLOPs XLA's cost analysis counts in the timed
program, over the timed seconds), `matmul_peak_gflop_per_s` (a 2048 x 2048 float32 matmul measured in the same
process) and their ratio, `roofline_fraction`.

  python -m experiments.benchmark --what=classifier --batch_size=64 --image_size=64 --steps=20
  python -m experiments.benchmark --what=classifier --image_size=32 --runs=2   # 2 runs at once (the sweep's)
  python -m experiments.benchmark --what=expression_gan --batch_size=16 --image_size=64 \
      --conv_dim=64 --repeat_num=6 --d_repeat_num=5
  python -m experiments.benchmark --what=identity_gan --batch_size=32 --image_size=64
  python -m experiments.benchmark --what=render --batch_size=512 --image_size=64   # procedural faces/s
  python -m experiments.benchmark --what=input --workdir=/tmp/bench   # grain batches/s at the quick preset
  python -m experiments.benchmark --what=all --dtype=bfloat16   # the three models at the paper preset's settings
                                                                  # (its batch sizes, xla convs; on a GPU/TPU)

Compare with the PyTorch peers (their own venv): .venv-torch/bin/python experiments/torch_peers.py classifier \
    --batch_size 64 ...
"""

import json
import threading
import time

from absl import app, flags
import jax
import numpy as np

flags.DEFINE_enum(
  'what',
  'classifier',
  ['classifier', 'expression_gan', 'identity_gan', 'render', 'input', 'all'],
  'Which step to time.',
)
flags.DEFINE_integer('batch_size', None, 'Global batch size (default: per model).')
flags.DEFINE_integer('image_size', 64, 'Square image side.')
flags.DEFINE_integer('steps', 20, 'Timed steps after compilation and warm-up.')
flags.DEFINE_integer('num_classes', 6, 'Classifier classes.')
flags.DEFINE_integer('conv_dim', 64, 'StarGAN base channels.')
flags.DEFINE_integer('repeat_num', 6, 'StarGAN generator residual blocks.')
flags.DEFINE_integer('d_repeat_num', 5, 'StarGAN critic stride-2 layers.')
flags.DEFINE_integer('runs', 1, '--what=classifier: runs trained at once in threads (sweep.concurrent_runs).')
flags.DEFINE_enum(
  'dtype',
  None,
  ['float32', 'bfloat16'],
  'Compute dtype of every model timed (params stay float32); default: float32, or with --what=all the paper '
  "preset's (bfloat16).",
)
flags.DEFINE_enum(
  'conv_impl',
  None,
  ['cpu', 'xla'],
  'Convolution lowering (classifier, expression GAN); default: cpu, or xla with --what=all (the '
  'paper preset, for GPUs/TPUs).',
)
flags.DEFINE_enum(
  'condition', 'emotion', ['emotion', 'aus'], "--what=expression_gan: what G is told (quick's GAN: aus)."
)
flags.DEFINE_enum(
  'preset',
  None,
  ['tiny', 'quick', 'paper'],
  '--what=identity_gan and input: the preset whose settings are timed (default: identity_gan paper at 64 px, '
  'quick below; input quick). tiny: the tests.',
)
flags.DEFINE_string('workdir', '/tmp/fer_jax_bench', "--what=input: where the quick preset's TFDS data is built.")
FLAGS = flags.FLAGS

DEFAULT_BATCH = {'classifier': 64, 'expression_gan': 16, 'identity_gan': 32, 'render': 512, 'input': 64}


def timed(step, steps, warmup=2):
  """Runs `step()` (which returns something to block on) warmup + steps times; returns seconds per step."""
  for _ in range(warmup):
    jax.block_until_ready(step())
  t = time.perf_counter()
  out = None
  for _ in range(steps):
    out = step()
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / steps


def step_flops(jitted, *args):
  """FLOPs of one call of `jitted` on `args` as XLA's cost analysis counts them in the compiled program (a
  multiply-add is 2; elementwise work counts too): the numerator of the roofline fraction."""
  cost = jitted.lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', 0.0))


def matmul_peak(n=2048, repeats=5):
  """This machine's measured float32 matmul rate in GFLOP/s (the best of `repeats` n x n products on the first
  device): the roofline a step's GFLOP/s is read against."""
  a = jax.device_put(np.ones((n, n), np.float32))
  f = jax.jit(lambda x: x @ x)
  jax.block_until_ready(f(a))
  best = min(timed(lambda: f(a), 1, warmup=0) for _ in range(repeats))
  return 2 * n**3 / best / 1e9


def bench_classifier(batch_size, image_size, steps, num_classes=6, dtype='float32', conv_impl='cpu', runs=1):
  """img/s of the train step; runs > 1: that many runs at once in threads (as `sweep.concurrent_runs`)."""
  from fer_jax.infra import parallel  # pylint: disable=import-outside-toplevel
  from fer_jax.models import layers  # pylint: disable=import-outside-toplevel
  from fer_jax.train import classifier  # pylint: disable=import-outside-toplevel

  hp = classifier.Hparams(num_classes=num_classes, image_size=image_size, lr=1e-4, dtype=dtype, conv_impl=conv_impl)
  programs = classifier.compiled(hp)
  rng = np.random.default_rng(0)
  batch = parallel.shard_batch(
    {
      'image': rng.integers(0, 256, (batch_size, image_size, image_size, 1), dtype=np.uint8),
      'label': rng.integers(0, num_classes, (batch_size,)).astype(np.int32),
    }
  )
  key = jax.random.key(1)
  boxes = [[programs.init(jax.random.key(r))] for r in range(runs)]

  def loop(box, n):
    out = None
    for _ in range(n):
      box[0], out = programs.train(box[0], batch, key)
    jax.block_until_ready(out)

  for box in boxes:
    loop(box, 2)  # compile and warm up
  threads = [threading.Thread(target=loop, args=(box, steps)) for box in boxes]
  start = time.perf_counter()
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  sec = time.perf_counter() - start
  flops = step_flops(programs.train, boxes[0][0], batch, key)
  return {
    'params': layers.count_params(boxes[0][0].params),
    'runs': runs,
    'img_per_s': runs * steps * batch_size / sec,
    'gflop_per_s': runs * steps * flops / sec / 1e9,
  }


def bench_render(batch_size, image_size, steps):
  from fer_jax.data import faces  # pylint: disable=import-outside-toplevel

  specs = [(s, e, 0) for s in range(batch_size) for e in range(7)][:batch_size]
  sec = timed(
    lambda: faces.render_specs(specs, image_size, 0, 'a', 0.25, 1.0, batch_size=batch_size)[0], max(1, steps // 4)
  )
  return {'params': 0, 'img_per_s': batch_size / sec}


def bench_input(batch_size, steps, workdir, preset='quick'):
  """The classifier's input at the quick preset (the training set read through grain from its TFDS ArrayRecord
  source once, `pipeline.in_memory`, then every epoch's shuffled batches cut from memory) against the
  classifier's train step at the same batch and image size; `read_seconds` is the one read."""
  from configs.default import get_config  # pylint: disable=import-outside-toplevel
  from fer_jax.train import classifier  # pylint: disable=import-outside-toplevel

  config = get_config(preset)
  classifier.build_datasets(config, workdir)  # builds the procedural data once (not timed)
  t = time.perf_counter()
  data = classifier.build_datasets(config, workdir)  # the run's one read of its sets
  read_seconds = time.perf_counter() - t
  epoch, n, it = 0, 0, iter(())
  t = None
  while n < steps + 2:
    try:
      batch = next(it)
    except StopIteration:
      it, epoch = iter(classifier.epoch_batches(config, data, batch_size, epoch)), epoch + 1  # the trainer's
      continue
    n += 1
    if n == 2:  # the first batch starts the read thread and fills the prefetch buffer
      t = time.perf_counter()
  batches_per_s = steps / (time.perf_counter() - t)
  size = config.data.image_size
  step = bench_classifier(batch_size, size, max(steps // 5, 5), conv_impl=config.classifier.conv_impl)
  return {
    'params': 0,
    'image_size': size,
    'img_per_s': batches_per_s * batch_size,
    'train_step_img_per_s': step['img_per_s'],
    'input_over_step': batches_per_s * batch_size / step['img_per_s'],
    'train_examples': len(data.train),
    'read_seconds': read_seconds,
    'batch_shape': list(np.shape(batch['image'])),
  }


def bench_expression_gan(
  batch_size,
  image_size,
  steps,
  conv_dim=64,
  repeat_num=6,
  d_repeat_num=5,
  attention=False,
  warmup=2,
  conv_impl='cpu',
  dtype='float32',
  condition='emotion',
  preset='quick',
):
  """Times the real train steps: one iteration = one critic step with GP + one generator step (the peer's).

  `condition` is what G is told: 'emotion' (StarGAN's one-hot class: the peer's and the paper preset's) or 'aus'
  (the 14 action-unit intensities quick's expression GAN is told). The other settings (the critic's head
  augmentation, loss weights) are `preset`'s."""
  from configs.default import get_config  # pylint: disable=import-outside-toplevel
  from fer_jax.data import emotions  # pylint: disable=import-outside-toplevel
  from fer_jax.infra import parallel  # pylint: disable=import-outside-toplevel
  from fer_jax.models import layers  # pylint: disable=import-outside-toplevel
  from fer_jax.train import expression_gan  # pylint: disable=import-outside-toplevel

  config = get_config(preset)
  with config.unlocked():
    config.data.image_size = int(image_size)
    e = config.expression_gan
    e.conv_dim, e.repeat_num, e.d_repeat_num = int(conv_dim), int(repeat_num), int(d_repeat_num)
    e.attention, e.batch_size, e.n_critic = bool(attention), int(batch_size), 1
    e.lambda_id = e.lambda_pair = 0.0  # the peer's step: adversarial + class + cycle only
    e.conv_impl, e.dtype = conv_impl, dtype
    e.condition = condition
  hp = expression_gan.hparams(config)
  parallel.check_batch_size(int(batch_size), 'batch_size')
  programs = expression_gan.compiled(hp)
  state = programs.init(0)
  rng = np.random.default_rng(0)
  batch = {
    'image': rng.integers(0, 256, (batch_size, image_size, image_size, 1), dtype=np.uint8),
    'label': rng.integers(0, len(emotions.EMOTIONS), (batch_size,)).astype(np.int32),
  }
  if condition == 'aus':  # the batch the trainer reads from a pool with action units (fer_jax.data.pool)
    batch['aus'] = rng.uniform(0, 1, (batch_size, emotions.NUM_AUS)).astype(np.float32)
  batch = parallel.shard_batch(batch)
  for _ in range(warmup):
    state, m = programs.dg(state, batch)
  jax.block_until_ready(m)
  t = time.perf_counter()
  for _ in range(steps):
    state, m = programs.dg(state, batch)
  jax.block_until_ready((state, m))
  dt = time.perf_counter() - t
  flops = step_flops(programs.dg, state, batch)
  return dict(
    what='expression_gan',
    preset=preset,
    batch_size=int(batch_size),
    image_size=int(image_size),
    conv_dim=int(conv_dim),
    repeat_num=int(repeat_num),
    d_repeat_num=int(d_repeat_num),
    params=layers.count_params(state.g_params) + layers.count_params(state.d_params),
    steps_per_s=steps / dt,
    img_per_s=steps * batch_size / dt,
    gflop_per_s=steps * flops / dt / 1e9,
    device=str(jax.devices()[0].platform),
    num_devices=jax.device_count(),
  )


def bench_identity_gan(batch_size, image_size, steps, dtype='float32', **model_kwargs):
  """Times the real G+D train step (R1 on every r1_every-th step, as in training) after compilation."""
  from configs import default  # pylint: disable=import-outside-toplevel
  from fer_jax.infra import parallel  # pylint: disable=import-outside-toplevel
  from fer_jax.infra.errors import UserError  # pylint: disable=import-outside-toplevel
  from fer_jax.models import layers  # pylint: disable=import-outside-toplevel
  from fer_jax.train import identity_gan  # pylint: disable=import-outside-toplevel

  preset = model_kwargs.pop('preset', 'paper' if image_size >= 64 else 'quick')
  config = default.get_config(preset)
  with config.unlocked():
    config.data.image_size = int(image_size)
    config.identity_gan.batch_size = int(batch_size)
    config.identity_gan.dtype = dtype
    for k, v in model_kwargs.items():
      if k not in config.identity_gan:
        raise UserError(f'benchmark: unknown identity_gan field {k!r}')
      config.identity_gan[k] = type(config.identity_gan[k])(v)
  identity_gan.check_config(config)
  programs = identity_gan.compiled(identity_gan.hparams(config))
  state = parallel.replicate(programs.init(jax.random.PRNGKey(0)))
  n_params = layers.count_params(state.g_params) + layers.count_params(state.d_params)
  nan_step = parallel.replicate(np.int32(-1))
  rng = np.random.default_rng(0)
  batch = parallel.shard_batch({'image': rng.integers(0, 256, (batch_size, image_size, image_size, 1), dtype=np.uint8)})
  r1_every = int(config.identity_gan.r1_every)
  state, m = programs.r1(state, batch, nan_step)  # compile both
  state, m = programs.train(state, batch, nan_step)
  jax.block_until_ready(m)
  t = time.time()
  for i in range(int(steps)):
    if i % r1_every == 0:
      state, _ = programs.r1(state, batch, nan_step)
    state, m = programs.train(state, batch, nan_step)
  jax.block_until_ready((state, m))
  dt = time.time() - t
  # The loop's FLOPs: every step's G + D update, and R1 on every r1_every-th.
  r1_steps = len(range(0, int(steps), r1_every))
  flops = steps * step_flops(programs.train, state, batch, nan_step) + r1_steps * step_flops(
    programs.r1, state, batch, nan_step
  )
  return dict(
    params=n_params,
    params_generator=layers.count_params(state.g_params),
    params_discriminator=layers.count_params(state.d_params),
    img_per_s=steps * batch_size / dt,
    gflop_per_s=flops / dt / 1e9,
    preset=preset,
    r1_every=r1_every,
  )


def run_one(what, batch_size, image_size, steps, conv_impl='cpu', dtype=None, paper=False):
  """Times `what` and prints its JSON line; `paper`: at the paper preset's settings (its batch sizes, models, compute
  dtype and conv_impl, unless `batch_size`, `dtype` or `conv_impl` say otherwise)."""
  dtype = dtype or 'float32'
  if paper:
    from configs import default  # pylint: disable=import-outside-toplevel

    section = default.get_config('paper')[what]
    batch_size = batch_size or int(section.batch_size)
  batch_size = batch_size or DEFAULT_BATCH[what]
  if what == 'classifier':
    out = bench_classifier(batch_size, image_size, steps, FLAGS.num_classes, dtype, conv_impl, FLAGS.runs)
  elif what == 'render':
    out = bench_render(batch_size, image_size, steps)
  elif what == 'input':
    out = bench_input(batch_size, max(steps, 50), FLAGS.workdir, FLAGS.preset or 'quick')
  elif what == 'expression_gan' and paper:
    out = bench_expression_gan(
      batch_size,
      image_size,
      steps,
      conv_dim=int(section.conv_dim),
      repeat_num=int(section.repeat_num),
      d_repeat_num=int(section.d_repeat_num),
      attention=bool(section.attention),
      conv_impl=conv_impl,
      dtype=dtype,
      condition=str(section.condition),
      preset='paper',
    )
  elif what == 'expression_gan':
    out = bench_expression_gan(
      batch_size,
      image_size,
      steps,
      conv_dim=FLAGS.conv_dim,
      repeat_num=FLAGS.repeat_num,
      d_repeat_num=FLAGS.d_repeat_num,
      conv_impl=conv_impl,
      dtype=dtype,
      condition=FLAGS.condition,
    )
  else:
    preset = 'paper' if paper else FLAGS.preset
    out = bench_identity_gan(batch_size, image_size, steps, dtype=dtype, **({'preset': preset} if preset else {}))
  if 'gflop_per_s' in out:  # the roofline: the step's FLOP rate against this machine's matmul rate
    out['matmul_peak_gflop_per_s'] = matmul_peak()
    out['roofline_fraction'] = out['gflop_per_s'] / out['matmul_peak_gflop_per_s']
  line = {
    'what': what,
    'batch_size': batch_size,
    'image_size': image_size,
    'steps': steps,
    'dtype': dtype,
    **({'conv_impl': conv_impl} if what in ('classifier', 'expression_gan') else {}),
    **out,
    'device': f'{jax.devices()[0].device_kind} x{jax.device_count()}',
    'jax': jax.__version__,
  }
  print(json.dumps(line), flush=True)
  return line


def main(argv):
  del argv
  if FLAGS.what == 'all':  # the paper preset's settings
    from configs import default  # pylint: disable=import-outside-toplevel

    paper = default.get_config('paper')
    for what in ('classifier', 'expression_gan', 'identity_gan'):
      section = paper[what]
      conv_impl = FLAGS.conv_impl or str(section.get('conv_impl', 'xla'))
      dtype = FLAGS.dtype or str(section.dtype)
      run_one(what, FLAGS.batch_size, int(paper.data.image_size), FLAGS.steps, conv_impl, dtype, paper=True)
  else:
    run_one(FLAGS.what, FLAGS.batch_size, FLAGS.image_size, FLAGS.steps, FLAGS.conv_impl or 'cpu', FLAGS.dtype)


if __name__ == '__main__':
  app.run(main)
