"""Options applied when a synthetic set is drawn. The sensor model (`synthetic.sensor_noise = 'pool'`): the noise
estimate, the matched noise, and a set made with it from the finished tiny sweep's GANs (same layout, nested,
recorded, its own folder). The action-unit scale (`synthetic.au_scale`): other faces, the same labels, its own
folder."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from fer_jax import sweep, synthetic
from fer_jax.data import pool as pool_lib
from fer_jax.infra import sensor_noise
from fer_jax.infra.errors import UserError


def _smooth_faces(n, seed=0):
  """uint8 [n, 32, 32, 1] images with smooth structure (gradients and a blob) and no noise."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:32, 0:32] / 32.0
  out = []
  for _ in range(n):
    a, b, c = rng.uniform(-60, 60, 3)
    blob = 50 * np.exp(-((xx - rng.uniform(0.3, 0.7)) ** 2 + (yy - 0.5) ** 2) / 0.05)
    out.append(128 + a * xx + b * yy + c * np.sin(3 * xx) + blob)
  return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)[..., None]


def test_the_noise_estimate_reads_added_gaussian_noise_and_ignores_smooth_structure():
  smooth = _smooth_faces(64)
  assert sensor_noise.noise_levels(smooth).max() < 0.003  # (uint8 rounding alone: ~0.001)
  rng = np.random.default_rng(1)
  for std in (0.01, 0.02, 0.04):
    noisy = np.clip(np.rint(smooth + 255 * std * rng.standard_normal(smooth.shape)), 0, 255).astype(np.uint8)
    assert sensor_noise.noise_levels(noisy).mean() == pytest.approx(std, rel=0.05)


def test_matched_noise_brings_each_face_to_a_reference_level_and_depends_only_on_its_identity_and_emotion():
  smooth = _smooth_faces(200)
  reference = np.array([0.01, 0.03])
  out = sensor_noise.add_matched_noise(smooth, reference, seed=5, ids=np.arange(200), emotion=2)
  levels = sensor_noise.noise_levels(out)
  # Each face lands near one of the two levels (a 32x32 estimate spreads by ~10%), and both levels are drawn.
  nearest = np.abs(levels[:, None] - reference[None]).argmin(1)
  np.testing.assert_allclose(levels, reference[nearest], rtol=0.3)
  assert 40 < np.sum(nearest == 0) < 160
  for k, level in enumerate(reference):
    assert levels[nearest == k].mean() == pytest.approx(level, rel=0.05)
  # A face is a function of (seed, identity, emotion): the same in a smaller batch, another for another emotion.
  np.testing.assert_array_equal(
    sensor_noise.add_matched_noise(smooth[50:60], reference, seed=5, ids=np.arange(50, 60), emotion=2), out[50:60]
  )
  assert not np.array_equal(sensor_noise.add_matched_noise(smooth, reference, 5, np.arange(200), 3), out)
  # A face already noisier than the level it draws is left as it is.
  rng = np.random.default_rng(2)
  loud = np.clip(np.rint(smooth + 255 * 0.05 * rng.standard_normal(smooth.shape)), 0, 255).astype(np.uint8)
  np.testing.assert_array_equal(sensor_noise.add_matched_noise(loud, reference, 5, np.arange(200), 2), loud)


def _set(tiny, finished, folder, n_images, **synthetic_fields):
  config = sweep.gan_config(tiny, 0)
  config.data.data_dir = str(finished / 'tfds')
  config.synthetic.update(synthetic_fields)
  gans = finished / 'gan0'
  path = synthetic.generate(
    config,
    str(folder),
    n_images=n_images,
    identity_gan_dir=str(gans / 'identity_gan'),
    expression_gan_dir=str(gans / 'expression_gan'),
  )
  builder = tfds.builder_from_directory(path)
  ds = builder.as_data_source('train')
  records = [ds[i] for i in range(len(ds))]
  images = np.stack([np.asarray(r['image']) for r in records])
  return path, images, np.array([int(r['label']) for r in records]), builder.info.metadata, config


def test_a_set_through_the_sensor_model_keeps_its_layout_and_nesting_and_records_its_levels(tiny, finished, tmp_path):
  plain_dir, plain, plain_labels, _, _ = _set(tiny, finished, tmp_path, 60)
  folder, images, labels, meta, config = _set(tiny, finished, tmp_path, 60, sensor_noise='pool')
  assert os.path.dirname(folder) != os.path.dirname(plain_dir)  # its own set, beside the plain one
  np.testing.assert_array_equal(labels, plain_labels)
  assert meta['sensor_noise'] == 'pool'
  pool = pool_lib.load_pool(config, str(tmp_path))
  reference = sensor_noise.noise_levels(pool.images[pool.train_idx])
  recorded = meta['provenance']['sensor_noise']
  assert recorded['count'] == len(reference)
  np.testing.assert_allclose(recorded['levels_p10_p50_p90'], np.percentile(reference, [10, 50, 90]), atol=1e-5)
  # tiny's 4-step GANs draw faces noisier than any real pool face, so the model adds nothing to them (what it adds
  # to quieter faces: the test above).
  assert sensor_noise.noise_levels(plain).min() > reference.max()
  np.testing.assert_array_equal(images, plain)
  # Nested: the smaller set is the larger one's first rows.
  _, small, _, _, _ = _set(tiny, finished, tmp_path, 24, sensor_noise='pool')
  np.testing.assert_array_equal(small, images[:24])


def test_an_unknown_sensor_model_is_refused_with_the_values_it_takes(tiny):
  tiny.synthetic.sensor_noise = 'camera'
  with pytest.raises(UserError, match="synthetic.sensor_noise='camera'; expected one of none, pool"):
    synthetic.check_config(tiny)


def test_a_set_told_stronger_action_units_draws_other_faces_with_the_same_labels_in_its_own_folder(
  tiny, finished, tmp_path
):
  plain_dir, plain, plain_labels, _, _ = _set(tiny, finished, tmp_path, 24)
  folder, images, labels, meta, _ = _set(tiny, finished, tmp_path, 24, au_scale=2.0)
  assert os.path.dirname(folder) != os.path.dirname(plain_dir) and meta['au_scale'] == 2.0
  np.testing.assert_array_equal(labels, plain_labels)
  assert np.abs(images.astype(int) - plain.astype(int)).mean() > 0.5
  _, small, _, _, _ = _set(tiny, finished, tmp_path, 12, au_scale=2.0)
  np.testing.assert_array_equal(small, images[:12])


@pytest.mark.parametrize(
  'fields,expected',
  [
    (dict(au_scale=0.0), r'synthetic.au_scale=0.0; expected a number > 0'),
    (dict(au_scale=float('inf')), r'synthetic.au_scale=inf; expected a number > 0'),
  ],
)
def test_a_bad_action_unit_scale_is_refused(tiny, fields, expected):
  tiny.synthetic.update(fields)
  with pytest.raises(UserError, match=expected):
    synthetic.check_config(tiny)


def test_an_action_unit_scale_is_refused_for_an_expression_gan_told_emotions(tiny):
  tiny.synthetic.au_scale = 1.5
  tiny.expression_gan.condition = 'emotion'
  with pytest.raises(UserError, match="condition='emotion' tells it an emotion"):
    synthetic.check_config(tiny)


def _oracle(tiny, folder, scale):
  tiny.synthetic.oracle_intensity = scale
  builder = tfds.builder_from_directory(synthetic.generate_oracle(tiny, str(folder), n_images=60))
  ds = builder.as_data_source('train')
  images = np.stack([np.asarray(ds[i]['image']) for i in range(len(ds))]).astype(np.int16)
  return images, [int(ds[i]['label']) for i in range(len(ds))], builder.data_dir


def test_a_weaker_oracle_draws_the_same_photos_with_weaker_expressions(tiny, tmp_path):
  """synthetic.oracle_intensity: the same people, photos and labels; the expression moves the pixels less the
  lower the scale (each face's intensity is its draw times the scale), and each scale is its own set."""
  full, labels, full_dir = _oracle(tiny, tmp_path, 1.0)
  weaker = {s: _oracle(tiny, tmp_path, s) for s in (0.6, 0.3)}
  assert len({full_dir, *(d for _, _, d in weaker.values())}) == 3
  moved = {}
  for s, (images, ls, _) in weaker.items():
    assert ls == labels
    moved[s] = np.abs(images - full).mean()
  assert 0.3 < moved[0.6] < moved[0.3], moved  # (grey levels; the faces are not the same at 0.6 already)
  assert np.abs(weaker[0.6][0] - weaker[0.3][0]).mean() < moved[0.3]


def test_a_bad_oracle_intensity_is_refused(tiny, tmp_path):
  tiny.synthetic.oracle_intensity = -0.5
  with pytest.raises(UserError, match=r"synthetic.oracle_intensity=-0.5; expected a number > 0 \(1: the data's own"):
    synthetic.generate_oracle(tiny, str(tmp_path), n_images=6)
