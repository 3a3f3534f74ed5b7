"""GAN quality metrics in the identity net's feature space (see fer_jax.eval.identity_net for why it).

- Fréchet distance (Heusel et al. 2017) between Gaussians fitted to the features of two image sets.
- Precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls around its
  points with radius the distance to the k-th nearest neighbour (k=3); precision = fraction of generated
  samples inside the real manifold (fidelity), recall = fraction of real samples inside the generated
  manifold (coverage; ~0 under mode collapse).

The reference set is held-out pool subjects (never shown to the GAN or to the identity net).
"""

import numpy as np


def gaussian_stats(features):
  f = np.asarray(features, np.float64)
  return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
  """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

  tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2)) with A = S1^(1/2) symmetric; A S2 A is symmetric PSD, so its
  square root's trace is the sum of the square roots of its (clipped) eigenvalues: no complex sqrtm.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
  ev, v = np.linalg.eigh((s1 + s1.T) / 2)
  a = (v * np.sqrt(np.clip(ev, 0, None))) @ v.T
  m = a @ s2 @ a
  tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)))
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def _pairwise_dist(a, b):
  d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
  return np.sqrt(np.clip(d2, 0, None))


def knn_radii(features, k=3):
  d = _pairwise_dist(features, features)
  return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(real, fake, k=3):
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  d = _pairwise_dist(real, fake)  # [R, F]
  precision = float(np.mean(np.any(d <= knn_radii(real, k)[:, None], axis=0)))
  recall = float(np.mean(np.any(d <= knn_radii(fake, k)[None, :], axis=1)))
  return precision, recall


class Evaluator:
  """Holds the identity net (`instruments.IdentityNet`) and the held-out reference features; scores uint8 image
  sets."""

  def __init__(self, net, train_images, holdout_images, *, k=3):
    self.net = net
    self.net_info = net.info
    self.k = k
    self.real = self.embed(holdout_images)
    self.real_stats = gaussian_stats(self.real)
    self.train_images = np.asarray(train_images)

  def embed(self, images):
    return self.net.features(np.asarray(images))

  def score(self, images):
    """dict(fd, precision, recall) of uint8 images [N,H,W,1] against the held-out pool subjects."""
    f = self.embed(images)
    fd = frechet_distance(*gaussian_stats(f), *self.real_stats)
    n = min(len(f), len(self.real))
    p, r = precision_recall(self.real[:n], f[:n], self.k)
    return dict(fd=fd, precision=p, recall=r, n_generated=int(len(f)), n_reference=int(len(self.real)))

  def pixel_gaussian_images(self, n, seed=0):
    """Samples of a Gaussian fitted to the training pool's pixel mean and covariance, as uint8."""
    x = self.train_images.reshape(len(self.train_images), -1).astype(np.float64)
    mu, cov = x.mean(0), np.cov(x, rowvar=False)
    ev, v = np.linalg.eigh(cov)
    eps = np.random.default_rng(seed).standard_normal((n, len(ev)))
    y = mu + (eps * np.sqrt(np.clip(ev, 0, None))) @ v.T
    return np.clip(np.rint(y), 0, 255).astype(np.uint8).reshape((n,) + self.train_images.shape[1:])

  def baselines(self, n, seed=0):
    """Reference points: the pixel Gaussian, and real GAN-training pool faces (what real data scores)."""
    out = {'pixel_gaussian': self.score(self.pixel_gaussian_images(n, seed))}
    idx = np.random.default_rng(seed).permutation(len(self.train_images))[:n]
    out['real_train_pool'] = self.score(self.train_images[idx])
    return out
