"""Identity network: a small CNN trained here to tell GAN-pool SUBJECTS apart; its features measure identity.

No pretrained weights (Inception, FaceNet) can be downloaded, so identity is measured in the penultimate
layer of a network we train ourselves: `fer_jax.eval.pool_judge.SmallCNN` trained to classify the subject
id of pool images across all 7 expressions of each subject. The cheapest way to solve that task is what
stays constant per person while the expression changes: face shape, skin tone, hair, background, lighting,
eye/brow/nose/mouth geometry. So its features see identity and are pushed to be invariant to expression (a
net trained on expression labels would mostly see mouth and brows and would not notice a GAN that draws the
same few people). Small random shifts and pixel noise in training keep it off exact pixel positions.

It is trained on the GAN-training subjects of the pool only; evaluations compare against held-out pool
subjects it has never seen, so its features must generalise across identities, as they must for generated
(new) identities.

Users:
- the identity GAN's quality metrics (fer_jax.eval.gan_metrics): Fréchet distance and precision/recall of
  generated faces vs held-out pool faces in this feature space (`train_or_load` caches the trained net as
  a checkpoint under WORKDIR/identity_net so reruns do not retrain it);
- the expression GAN's "identity kept" metric (`train`, `embed`, `nearest_subject`).
"""

import hashlib
import json
import os

import numpy as np

from fer_jax import checkpointing
from fer_jax.eval import pool_judge

WIDTH = 32
EMBED_DIM = 256


def _labels(subjects):
  _, labels = np.unique(np.asarray(subjects), return_inverse=True)
  return labels.astype(np.int32), int(labels.max()) + 1


def train(images, subjects, *, steps, seed=0, batch_size=64, width=WIDTH, embed_dim=EMBED_DIM):
  """Trains the subject classifier on uint8 images [N,H,W,1]; returns (params, num_subjects)."""
  labels, n = _labels(subjects)
  params = pool_judge.train_cnn(
    images, labels, n, steps=steps, batch_size=batch_size, seed=seed, width=width, embed_dim=embed_dim, desc='identity'
  )
  return params, n


def features(params, num_subjects, images, *, width=WIDTH, embed_dim=EMBED_DIM):
  """Penultimate-layer features [N, embed_dim] (float64 numpy)."""
  _, f = pool_judge.predict(params, images, num_subjects, width=width, embed_dim=embed_dim)
  return np.asarray(f, np.float64)


def embed(params, num_subjects, images, **kw):
  """L2-normalised features: cosine similarity is a dot product."""
  f = features(params, num_subjects, images, **kw)
  return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-8)


def nearest_subject(query, gallery, gallery_subjects, exclude=None):
  """Subject of each query's cosine nearest gallery item; `exclude[q]` (a gallery index) is skipped."""
  sim = np.asarray(query) @ np.asarray(gallery).T
  if exclude is not None:
    sim[np.arange(len(sim)), np.asarray(exclude)] = -np.inf
  return np.asarray(gallery_subjects)[np.argmax(sim, axis=1)]


def accuracy(params, num_subjects, images, labels, **kw):
  """Subject accuracy; `labels` are the class indices the net was trained with (not raw subject ids)."""
  logits, _ = pool_judge.predict(params, images, num_subjects, **kw)
  return float(np.mean(logits.argmax(1) == np.asarray(labels)))


def _fingerprint(images, subjects, **settings):
  h = hashlib.sha1()
  h.update(np.ascontiguousarray(images).tobytes())
  h.update(np.asarray(subjects, np.int64).tobytes())
  h.update(json.dumps(settings, sort_keys=True).encode())
  return h.hexdigest()[:16]


def train_or_load(images, subjects, workdir, *, steps, seed=0, width=WIDTH, embed_dim=EMBED_DIM, log=print):
  """`train`, cached under WORKDIR/identity_net (keyed by a fingerprint of data and settings).

  One image in 8 is held out to report how well the net tells (seen) subjects apart. Returns
  (params, num_subjects, info).
  """
  images, subjects = np.asarray(images), np.asarray(subjects)
  settings = dict(steps=int(steps), seed=int(seed), width=int(width), embed_dim=int(embed_dim))
  fp = _fingerprint(images, subjects, **settings)
  labels, n = _labels(subjects)
  val = np.random.default_rng(seed).random(len(images)) < 0.125
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'identity_net'))
  try:
    if ckpt.latest_step() is not None and ckpt.restore_meta().get('fingerprint') == fp:
      template = pool_judge.train_cnn(images[:1], labels[:1], n, steps=0, width=width, embed_dim=embed_dim)
      params, _ = ckpt.restore(template)
      cached = True
    else:
      params = pool_judge.train_cnn(
        images[~val], labels[~val], n, steps=steps, seed=seed, width=width, embed_dim=embed_dim, desc='identity'
      )
      ckpt.save(int(steps), params, dict(fingerprint=fp))
      cached = False
    acc = accuracy(params, n, images[val], labels[val], width=width, embed_dim=embed_dim) if val.any() else float('nan')
    log(
      f'identity net ({"cached" if cached else "trained"}): {n} subjects, accuracy on held-out images '
      f'of them {acc:.3f} (chance {1 / n:.3f})'
    )
    info = dict(
      fingerprint=fp,
      net='fer_jax.eval.pool_judge.SmallCNN',
      width=int(width),
      embed_dim=int(embed_dim),
      subjects=n,
      train_images=int((~val).sum()),
      steps=int(steps),
      heldout_image_accuracy=acc,
      chance=1.0 / n,
    )
    return params, n, info
  finally:
    ckpt.close()
