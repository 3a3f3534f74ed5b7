"""An independent expression judge: a small CNN trained only on real GAN-pool faces (7 classes).

The expression GAN's own critic has a class head, but judging translations with it would be marking one's
own homework (the generator is trained to please exactly that head). This judge never sees a generated
image and shares no weights with the GAN, so "judged target accuracy" measures whether a translated face
looks like its target emotion to a classifier of real faces.

The same network and trainer also serve the identity net (`fer_jax.eval.identity_net`), which is this CNN
trained to tell subjects apart. Training runs on in-memory numpy arrays (a few thousand small faces); it is
an evaluation instrument, not a data-parallel training job.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from fer_jax.infra import augment, parallel, pixels


class SmallCNN(nn.Module):
  """conv-conv-pool x2, conv-pool, dense `embed_dim` (the features), dense `num_classes`."""

  # No defaults: the judge, the identity net and the realism net each have their own embed_dim (the identity
  # net's is config.eval.identity_embed_dim), so every caller says which.
  num_classes: int
  width: int
  embed_dim: int

  @nn.compact
  def __call__(self, x, train=False, return_features=False):
    w = self.width
    for mult in (1, 2):
      x = nn.relu(nn.Conv(w * mult, (3, 3))(x))
      x = nn.relu(nn.Conv(w * mult, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = nn.relu(nn.Conv(w * 4, (3, 3))(x))
    x = nn.max_pool(x, (2, 2), (2, 2))
    x = x.reshape(x.shape[0], -1)
    x = nn.Dropout(0.3, deterministic=not train)(x)
    feats = nn.relu(nn.Dense(self.embed_dim)(x))
    logits = nn.Dense(self.num_classes)(nn.Dropout(0.3, deterministic=not train)(feats))
    return (logits, feats) if return_features else logits


@functools.lru_cache(maxsize=None)
def _programs(num_classes, width, embed_dim, lr):
  model = SmallCNN(num_classes, width, embed_dim)
  tx = optax.adam(lr)

  @parallel.jit
  def step(params, opt_state, images, labels, seed, i):
    key = jax.random.fold_in(jax.random.key(seed, impl='rbg'), i)  # rbg: see `init`
    # Small shifts and pixel noise: the judge should key on expression, not on exact pixel alignment or the
    # grain of the renderer, so that it transfers to generator output.
    x = augment.shift_noise(jax.random.fold_in(key, 0), pixels.to_unit(images))

    def loss_fn(p):
      logits = model.apply(p, x, train=True, rngs={'dropout': jax.random.fold_in(key, 1)})
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  @parallel.jit
  def init(seed, example):
    # 'rbg' weights: XLA:CPU compiles threefry for every weight tensor very slowly (tens of seconds).
    return model.init(jax.random.key(seed, impl='rbg'), example)

  @parallel.jit
  def predict(params, images):
    logits, feats = model.apply(params, pixels.to_unit(images), return_features=True)
    return logits, feats

  return model, tx, step, predict, init


def train_cnn(images, labels, num_classes, *, steps, embed_dim, batch_size=64, lr=1e-3, seed=0, width=16, desc='judge'):
  """Trains SmallCNN on in-memory (uint8 [N,H,W,C], int [N]) data; returns its params."""
  del desc
  images = np.asarray(images)
  labels = np.asarray(labels, np.int32)
  model, tx, step, _, init = _programs(int(num_classes), int(width), int(embed_dim), float(lr))
  params = init(seed, jnp.zeros((1,) + images.shape[1:], jnp.float32))
  opt_state = tx.init(params)
  rng = np.random.default_rng(seed)
  n = len(images)
  bs = min(batch_size, n)
  order, pos = rng.permutation(n), 0
  for s in range(int(steps)):
    if pos + bs > n:
      order, pos = rng.permutation(n), 0
    idx = order[pos : pos + bs]
    pos += bs
    params, opt_state, _ = step(params, opt_state, images[idx], labels[idx], seed, s)
  return params


def predict(params, images, num_classes, *, embed_dim, width=16, lr=1e-3, batch_size=256):
  """(logits [N, classes], features [N, embed_dim]) as numpy, in fixed-size batches (one compile)."""
  _, _, _, fn, _ = _programs(int(num_classes), int(width), int(embed_dim), float(lr))
  # Every call, however few images, pads to batch_size: one compile for all callers.
  logits, feats = parallel.map_batches(lambda chunk: fn(params, chunk), (np.asarray(images),), batch_size)
  return logits, feats


def template(num_classes, image_shape, *, embed_dim, width=16, lr=1e-3):
  """Params of the right structure (freshly initialised): what a saved net is restored into."""
  *_, init = _programs(int(num_classes), int(width), int(embed_dim), float(lr))
  return init(0, jnp.zeros((1,) + tuple(image_shape), jnp.float32))
