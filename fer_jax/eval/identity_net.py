"""Identity network: a small CNN trained here to tell GAN-pool SUBJECTS apart; its features measure identity.

No pretrained weights (Inception, FaceNet) can be downloaded, so identity is measured in the penultimate
layer of a network we train ourselves: `fer_jax.eval.small_cnn.SmallCNN` trained to classify the subject
id of pool images across all 7 expressions of each subject. The cheapest way to solve that task is what
stays constant per person while the expression changes: face shape, skin tone, hair, background, lighting,
eye/brow/nose/mouth geometry. So its features see identity and are pushed to be invariant to expression (a
net trained on expression labels would mostly see mouth and brows and would not notice a GAN that draws the
same few people). Small random shifts and pixel noise in training keep it off exact pixel positions.

It is trained on the GAN-training subjects of the pool only; evaluations compare against held-out pool
subjects it has never seen, so its features must generalise across identities, as they must for generated
(new) identities.

Trained once per pool and cached by `fer_jax.eval.instruments.identity`; read by the identity GAN's quality
metrics (fer_jax.eval.gan_metrics: Fréchet distance and precision/recall of generated faces vs held-out pool
faces in this feature space) and the expression GAN's "identity kept" (`embed`, `nearest_subject`).
"""

import numpy as np

from fer_jax.eval import small_cnn


def labels_of(subjects):
  """(class index per image, number of subjects): the labels the net is trained with."""
  _, labels = np.unique(np.asarray(subjects), return_inverse=True)
  return labels.astype(np.int32), int(labels.max()) + 1


def features(params, num_subjects, images, *, width, embed_dim):
  """Penultimate-layer features [N, embed_dim] (float64 numpy); width and embed_dim are eval.width and
  eval.identity_embed_dim, what the net was trained with."""
  _, f = small_cnn.predict(params, images, num_subjects, width=width, embed_dim=embed_dim)
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
  logits, _ = small_cnn.predict(params, images, num_subjects, **kw)
  return float(np.mean(logits.argmax(1) == np.asarray(labels)))
