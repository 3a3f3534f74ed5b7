"""The evaluation instruments of a GAN pool, trained once per pool and read by everything that scores faces.

- the expression **judge**: `small_cnn.SmallCNN` trained on the 7 expression labels;
- the **identity net**: the same CNN trained to tell subjects apart (`fer_jax.eval.identity_net`); its
  features are the space of the identity GAN's Fréchet distance and of the expression GAN's "identity kept".

Both learn from the real faces of the pool's training subjects (`fer_jax.data.pool`), never from a
held-out subject or a generated face, with the settings of `config.eval`. Each is cached as
DATA_DIR/instruments/KIND-FINGERPRINT (DATA_DIR = `sources.data_dir`, which the stages of a sweep share), the
fingerprint covering the faces, their labels and the settings, so the identity GAN, the expression GAN, the
synthetic set's quality and the judge-curated sets of one sweep all read one judge and one identity net,
trained once. A lock keeps two stages started together (Ray, Slurm) from training one twice.
"""

import contextlib
import dataclasses
import hashlib
import json
import os

from absl import logging
import jax
import numpy as np

from fer_jax.data import emotions, sources
from fer_jax.data import pool as pool_lib
from fer_jax.eval import identity_net, small_cnn
from fer_jax.infra import io_utils
from fer_jax.infra.checkpointing import Checkpointer

JUDGE_EMBED_DIM = 256
IDENTITY_VALIDATION = 0.125  # share of the identity net's images kept aside to report how well it tells subjects apart


@dataclasses.dataclass(frozen=True)
class ExpressionNet:
  params: dict
  width: int
  fingerprint: str

  def logits(self, images):
    """Logits [N, 7] of uint8 faces [N, H, W, 1] (numpy; one compiled batch shape for every call)."""
    n = len(emotions.EMOTIONS)
    return small_cnn.predict(self.params, images, n, width=self.width, embed_dim=JUDGE_EMBED_DIM)[0]

  def predict(self, images):
    return self.logits(images).argmax(1)


@dataclasses.dataclass(frozen=True)
class IdentityNet:
  params: dict
  num_subjects: int
  width: int
  embed_dim: int
  info: dict  # fingerprint, size, held-out image accuracy: what metrics.json records of it

  def features(self, images):
    """Penultimate features [N, embed_dim] (float64): the Fréchet distance's space."""
    return identity_net.features(self.params, self.num_subjects, images, width=self.width, embed_dim=self.embed_dim)

  def embed(self, images):
    """L2-normalised features: cosine similarity is a dot product."""
    return identity_net.embed(self.params, self.num_subjects, images, width=self.width, embed_dim=self.embed_dim)


def fingerprint(*arrays, **settings):
  h = hashlib.sha1()
  for a in arrays:
    h.update(np.ascontiguousarray(a).tobytes())
  h.update(json.dumps(settings, sort_keys=True).encode())
  return h.hexdigest()[:16]


def _cached(config, workdir, kind, fp, template, train):
  """(params, meta) of instrument `kind` with fingerprint `fp`: restored when cached, else `train()`ed and kept."""
  home = os.path.join(sources.data_dir(config, workdir), 'instruments')
  os.makedirs(home, exist_ok=True)
  directory = os.path.join(home, f'{kind}-{fp}')
  # One host trains while another waits; on several hosts every process trains the same net (orbax saves
  # collectively, so a lock held by one process would stop the others).
  single = jax.process_count() == 1
  with (
    io_utils.locked(directory + '.lock', f'the {kind} instrument', wait=True) if single else contextlib.nullcontext()
  ):
    with Checkpointer(directory) as ckpt:
      if ckpt.latest_step() is not None:
        params, meta = ckpt.restore(template(), fallback=True)  # an unreadable copy: one clear line
        logging.info('%s: cached in %s', kind, directory)
        return params, meta
      params, meta = train()
      ckpt.save(0, params, meta)
      return params, meta


def expression(config, workdir, pool=None):
  """The pool's expression judge (trained on first use)."""
  pool = pool if pool is not None else pool_lib.load_pool(config, workdir)
  e = config.eval
  width, steps, seed = int(e.width), int(e.judge_steps), int(config.seed)
  images, labels = pool.train_images, pool.labels[pool.train_idx]
  c = len(emotions.EMOTIONS)
  fp = fingerprint(images, labels, kind='judge', steps=steps, seed=seed, width=width, embed_dim=JUDGE_EMBED_DIM)

  def template():
    return small_cnn.template(c, images.shape[1:], width=width, embed_dim=JUDGE_EMBED_DIM)

  def train():
    params = small_cnn.train_cnn(images, labels, c, steps=steps, seed=seed, width=width, embed_dim=JUDGE_EMBED_DIM)
    return params, dict(fingerprint=fp, steps=steps, seed=seed, width=width, train_images=int(len(images)))

  params, _ = _cached(config, workdir, 'judge', fp, template, train)
  return ExpressionNet(params, width, fp)


def identity(config, workdir, pool=None):
  """The pool's identity net (trained on first use); one image in 8 is kept aside to report its accuracy."""
  pool = pool if pool is not None else pool_lib.load_pool(config, workdir)
  e = config.eval
  width, embed_dim, steps, seed = int(e.width), int(e.identity_embed_dim), int(e.identity_steps), int(config.seed)
  images, subjects = pool.train_images, pool.train_subjects
  labels, n = identity_net.labels_of(subjects)
  val = np.random.default_rng(seed).random(len(images)) < IDENTITY_VALIDATION
  fp = fingerprint(images, subjects, kind='identity', steps=steps, seed=seed, width=width, embed_dim=embed_dim)

  def template():
    return small_cnn.template(n, images.shape[1:], width=width, embed_dim=embed_dim)

  def train():
    params = small_cnn.train_cnn(
      images[~val], labels[~val], n, steps=steps, seed=seed, width=width, embed_dim=embed_dim, desc='identity'
    )
    acc = identity_net.accuracy(params, n, images[val], labels[val], width=width, embed_dim=embed_dim)
    return params, dict(heldout_image_accuracy=float(acc) if val.any() else float('nan'))

  params, meta = _cached(config, workdir, 'identity', fp, template, train)
  info = dict(
    fingerprint=fp,
    net='fer_jax.eval.small_cnn.SmallCNN',
    width=width,
    embed_dim=embed_dim,
    subjects=n,
    train_images=int((~val).sum()),
    steps=steps,
    heldout_image_accuracy=meta['heldout_image_accuracy'],
    chance=1.0 / n,
  )
  logging.info(
    'identity net: %d subjects, accuracy on held-out images of them %.3f (chance %.3f)',
    n,
    info['heldout_image_accuracy'],
    info['chance'],
  )
  return IdentityNet(params, n, width, embed_dim, info)
