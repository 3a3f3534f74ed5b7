"""The quality of the synthetic training set itself: does each face show its label, and does it look real?

The GANs' own metrics score them on pool faces; the classifier is fed the synthetic set (identity GAN faces
given each Ekman emotion by the expression GAN), and two instruments score that set:

- Judge agreement: the pool's independent 7-class judge (`fer_jax.eval.instruments`, trained only on real pool
  faces of the GANs' training subjects; the one the expression GAN's metrics use) predicts each
  synthetic face; agreement = the fraction predicted as its label. It exists because a synthetic label is
  only what the GAN was asked for: if the face does not show it, synthetic data teaches label noise. Read it
  against the same judge's accuracy on real held-out pool faces of the 6 Ekman classes.
- Realism: the held-out accuracy of a small CNN trained to tell real pool faces from synthetic ones, split
  subject-disjointly on both sides and balanced (0.5 = indistinguishable, 1.0 = trivially told apart). It
  exists because faces that show the right emotion can still carry generator artefacts that the classifier
  may learn instead of the expression (a domain gap between the synthetic and the real test faces).
- Image statistics of the two sides the probe sees (`image_statistics`): high-pass residual, high-frequency power
  and contrast, to say what it may key on.
"""

import time

import numpy as np
from scipy import stats

from fer_jax.data import emotions, sources
from fer_jax.data import pool as pool_lib
from fer_jax.eval import instruments, small_cnn
from fer_jax.infra.errors import UserError

WIDTH = 16  # of the real-vs-synthetic CNN: 16 keeps it under a minute on 2 CPU cores at 32x32
EMBED_DIM = 256  # its feature width (the expression judge's)


def load_synthetic(config, workdir, synthetic_dir, max_images=None):
  """(images uint8 [N,H,W,1], labels, subjects) of the first `max_images` faces (None = all): balanced,
  as the set is identity-major with all 6 emotions per identity."""
  ds = sources.load(sources.Source('synthetic', str(synthetic_dir)), 'train', config, workdir)
  n = len(ds) if max_images is None else min(len(ds), int(max_images))
  recs = [ds[i] for i in range(n)]
  return (
    np.stack([np.asarray(r['image'], np.uint8) for r in recs]),
    np.array([int(r['label']) for r in recs], np.int32),
    np.array([int(r['subject']) for r in recs]),
  )


def judge_agreement(judge, images, labels):
  """(overall, {Ekman name: agreement}) of the judge's 7-way argmax with `labels`.

  The argmax runs over all 7 classes, neutral included: a face the judge calls neutral does not show its
  label, so it counts as a disagreement. A class with no image gets None.
  """
  pred = judge.predict(images)
  per = {
    name: (float(np.mean(pred[labels == k] == k)) if np.any(labels == k) else None)
    for k, name in enumerate(emotions.EKMAN)
  }
  return float(np.mean(pred == labels)), per


def split_by_subject(subjects, heldout_fraction, rng):
  """(train_idx, heldout_idx): a random `heldout_fraction` of the subjects (at least one each way)."""
  uniq = np.unique(subjects)
  if len(uniq) < 2:
    raise UserError(f'a subject-disjoint split needs at least 2 subjects, got {len(uniq)}')
  k = min(max(1, int(round(heldout_fraction * len(uniq)))), len(uniq) - 1)
  held = np.isin(subjects, rng.choice(uniq, k, replace=False))
  return np.nonzero(~held)[0], np.nonzero(held)[0]


def realism(real_images, real_subjects, fake_images, fake_subjects, steps, seed, heldout_fraction=0.3):
  """Held-out accuracy of a real (0) vs fake (1) SmallCNN, its 95% CI (`clustered_wilson`), split sizes.

  Both sides are split by subject (real: pool subjects; fake: generated identities), then each of the
  train and held-out parts is cut to equal real and fake counts, so 0.5 is exactly chance.
  """
  rng = np.random.default_rng(seed)
  r_tr, r_ho = split_by_subject(np.asarray(real_subjects), heldout_fraction, rng)
  f_tr, f_ho = split_by_subject(np.asarray(fake_subjects), heldout_fraction, rng)

  def balanced(r, f):
    m = min(len(r), len(f))
    idx_r, idx_f = np.sort(rng.permutation(r)[:m]), np.sort(rng.permutation(f)[:m])
    x = np.concatenate([np.asarray(real_images)[idx_r], np.asarray(fake_images)[idx_f]])
    return x, np.repeat(np.array([0, 1], np.int32), m), idx_r, idx_f

  (x_tr, y_tr, tr_r, tr_f), (x_ho, y_ho, ho_r, ho_f) = balanced(r_tr, f_tr), balanced(r_ho, f_ho)
  params = small_cnn.train_cnn(x_tr, y_tr, 2, steps=steps, seed=seed, width=WIDTH, embed_dim=EMBED_DIM)
  hit = small_cnn.predict(params, x_ho, 2, width=WIDTH, embed_dim=EMBED_DIM)[0].argmax(1) == y_ho
  clusters = np.concatenate([np.asarray(real_subjects)[ho_r], np.asarray(fake_subjects)[ho_f]])
  return {
    'accuracy': float(hit.mean()),
    'ci95': clustered_wilson(hit, clusters * 2 + y_ho),
    'n_train': int(len(y_tr)),
    'n_heldout': int(len(y_ho)),
    'index': {'real_train': tr_r, 'real_heldout': ho_r, 'fake_train': tr_f, 'fake_heldout': ho_f},
  }


def image_statistics(images):
  """What a real-vs-synthetic probe can key on, in numbers a person can compare between sets (JSON-able).

  `highpass` is each image's standard deviation of its high-pass residual (the image minus its 3x3 box blur, in
  [0, 1] units): sensor noise and fine texture; real photos carry it at every strength, a GAN may draw none or a
  pattern. `high_frequency_power` is the share of each image's spectral power (mean removed) above half the
  Nyquist radius. `contrast` is each image's grey-level standard deviation. Each as its 10th, 50th and 90th
  percentile over the images: the spread matters as much as the level.
  """
  x = np.asarray(images, np.float64)[..., 0] / 255.0
  pad = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode='edge')
  h, w = x.shape[1:]
  blur = sum(pad[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
  power = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))) ** 2
  fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing='ij')
  high = np.hypot(fy, fx) > 0.25  # half of the Nyquist frequency 0.5 cycles/pixel
  total = power.sum(axis=(1, 2))
  per_image = {
    'highpass': (x - blur).std(axis=(1, 2)),
    'high_frequency_power': np.where(total > 0, power[:, high].sum(1) / np.where(total > 0, total, 1.0), 0.0),
    'contrast': x.std(axis=(1, 2)),
  }
  return {k: [float(q) for q in np.percentile(v, [10, 50, 90])] for k, v in per_image.items()}


def clustered_wilson(hit, clusters, level=0.95):
  """Wilson interval for the mean of `hit`, n shrunk by the design effect of the clusters (subjects).

  Faces of one subject are judged alike, so a binomial interval over images is too narrow (two halves of
  the same faces: 28%, binomial CI 19-39%); the cluster-robust variance of the mean sets the effective n.
  """
  hit = np.asarray(hit, np.float64)
  n, p = len(hit), hit.mean()
  _, inv = np.unique(clusters, return_inverse=True)
  k, m = np.bincount(inv, hit), np.bincount(inv)
  s = len(m)
  var = s / max(s - 1, 1) * np.sum((k - p * m) ** 2) / n**2
  n_eff = min(n, p * (1 - p) / var) if var > 0 else n
  z = stats.norm.ppf(0.5 + level / 2)
  centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
  half = z / (1 + z * z / n_eff) * np.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff**2))
  return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def evaluate(config, workdir, synthetic_dir, *, max_images=2000, realism_steps=300):
  """Judge agreement and realism of (the first `max_images` faces of) the synthetic set; JSON-able. The judge is
  the GAN pool's (`instruments.judge`: trained on first use, then cached)."""
  t0 = time.time()
  pool = pool_lib.load_pool(config, workdir)
  images, labels, subjects = load_synthetic(config, workdir, synthetic_dir, max_images)
  ho = pool.holdout_idx[pool.labels[pool.holdout_idx] < emotions.NUM_EKMAN]
  judge = instruments.expression(config, workdir, pool)
  (agreement, per_class), (reference, _) = (
    judge_agreement(judge, images, labels),
    judge_agreement(judge, pool.images[ho], pool.labels[ho]),
  )
  ekman = np.nonzero(pool.labels < emotions.NUM_EKMAN)[0]  # as in the synthetic set: neutral would mean "real"
  n = min(len(ekman), len(images))
  real = np.sort(np.random.default_rng(config.seed).permutation(ekman)[:n])
  r = realism(pool.images[real], pool.subjects[real], images[:n], subjects[:n], realism_steps, config.seed)
  return {
    'judge_agreement': agreement,
    'judge_agreement_per_class': per_class,
    'judge_real_holdout_accuracy': reference,
    'n_judged': int(len(images)),
    'realism_accuracy': r['accuracy'],
    'realism_ci95': r['ci95'],
    'realism_n_train': r['n_train'],
    'realism_n_heldout': r['n_heldout'],
    'image_statistics': {'real': image_statistics(pool.images[real]), 'synthetic': image_statistics(images[:n])},
    'seconds': time.time() - t0,
  }
