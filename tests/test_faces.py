import jax.numpy as jnp
import numpy as np

from fer_jax.data import emotions, faces

SPECS = [(s, e, r) for s in range(3) for e in range(7) for r in range(2)]


def test_same_seed_same_bytes_whatever_the_batching():
  a, meta_a = faces.render_specs(SPECS, 32, 5, 'a', 0.25, 1.0, batch_size=64)
  b, meta_b = faces.render_specs(SPECS[::-1], 32, 5, 'a', 0.25, 1.0, batch_size=8)
  assert a.dtype == np.uint8 and a.shape == (len(SPECS), 32, 32, 1)
  np.testing.assert_array_equal(a, b[::-1])
  np.testing.assert_array_equal(meta_a['aus'], meta_b['aus'][::-1])
  c, _ = faces.render_specs(SPECS, 32, 6, 'a', 0.25, 1.0, batch_size=64)
  assert (a != c).mean() > 0.5


def test_domains_differ():
  a, _ = faces.render_specs(SPECS, 32, 5, 'a', 0.25, 1.0)
  b, _ = faces.render_specs(SPECS, 32, 5, 'b', 0.25, 1.0)
  assert (a != b).mean() > 0.5


def test_aus_follow_the_emfacs_prototypes():
  _, meta = faces.render_specs([(0, e, 0) for e in range(7)], 32, 0, 'a', 1.0, 1.0)
  proto = emotions.prototype_matrix()
  on = meta['aus'][proto == 1]
  assert on.min() >= 0.7  # full intensity with at most 30% jitter
  assert meta['aus'][6].max() <= 0.25  # neutral: only background activity
  assert emotions.PROTOTYPES['happiness'] == (6, 12)


def _render_with(aus, size=64):
  identity, _, _, nuisance, key = faces._draw(3, 'a', 11, 0, 0, 0.5, 0.5)  # pylint: disable=protected-access
  # No noise and no blur: compare the geometry alone.
  nuisance = nuisance.at[faces.NUISANCE_KEYS.index('noise')].set(0.0)
  return np.asarray(faces._render_one(identity, jnp.asarray(aus), nuisance, key, size)[0])  # pylint: disable=protected-access


def test_expressions_are_local_deformations_not_global_brightness():
  neutral = _render_with(np.zeros(emotions.NUM_AUS, np.float32))
  proto = emotions.prototype_matrix()
  lin = (np.arange(64) + 0.5) / 64 * 2 - 1
  gx, gy = np.meshgrid(lin, lin)
  far = (np.abs(gx) > 0.85) | (gy < -0.9)  # background and hair, away from the facial features
  for e, name in enumerate(emotions.EKMAN):
    img = _render_with(proto[e])
    diff = np.abs(img - neutral)
    assert diff.max() > 0.1, name  # something visibly moved (contrast may be < 1)
    assert abs(img.mean() - neutral.mean()) < 0.03, name  # but the image is not globally brighter/darker
    assert diff[far].max() < 1e-3, name  # and nothing changed far from the face's features
    # Most of the change sits in a small part of the image.
    assert (diff > 0.05).mean() < 0.15, name


def test_render_as_draws_the_same_photo_with_another_expression():
  specs = [(s, e, r) for s in (2, 9) for e in range(7) for r in range(2)]
  own, meta = faces.render_specs(specs, 32, 5, 'a', 0.25, 1.0)
  same, _ = faces.render_specs(specs, 32, 5, 'a', 0.25, 1.0, shown=[e for _, e, _ in specs])
  np.testing.assert_array_equal(own, same)  # shown = the photo's own emotion: the dataset's image
  happy = emotions.EMOTIONS.index('happiness')
  other, ometa = faces.render_specs(specs, 32, 5, 'a', 0.25, 1.0, shown=[happy] * len(specs))
  assert (ometa['label'] == happy).all()
  np.testing.assert_array_equal(ometa['intensity'], meta['intensity'])  # the photo's intensity, nuisance, noise
  proto = emotions.prototype_matrix()[happy] == 1
  assert (ometa['aus'][:, proto] >= 0.7 * 0.25).all() and (ometa['aus'][:, ~proto] <= 0.25).all()
  changed = [i for i, (_, e, _) in enumerate(specs) if e != happy]
  diff = np.abs(own[changed].astype(int) - other[changed].astype(int))[..., 0]
  assert (diff.max((1, 2)) > 20).all()  # every other expression became a smile (faint at intensity 0.25)
  # ... and nothing but the face moved: pose, lighting and the noise are the photo's.
  outside = np.maximum(meta['face'][changed], ometa['face'][changed]) < 0.01
  assert (diff[outside] == 0).mean() > 0.98 and diff[outside].max() <= 8  # blur spreads the edge a pixel
  assert 0.2 < meta['face'].mean() < 0.6
