"""Ground truth for expression translations: the renders, the error, the baselines, the judge's ceiling."""

import numpy as np
import pytest

from configs.default import get_config
from fer_jax import report
from fer_jax.data import emotions, sources
from fer_jax.eval import ground_truth


@pytest.fixture(scope='module')
def tiny_pairs():
  config = get_config('tiny')
  cfg, why = ground_truth.renderer_config(config)
  assert why is None
  return config, cfg, ground_truth.pairs(cfg, [18, 20])  # pool subjects follow the 16 of train/val/test


def test_inputs_are_the_pools_faces_and_truth_is_their_photo_with_the_target(tiny_pairs, tmp_path):
  config, _, p = tiny_pairs
  c = len(emotions.EMOTIONS)
  assert len(p['target']) == 2 * c * c * config.data.procedural.pool_images_per_emotion
  pool = sources.load(sources.parse_sources('procedural:a')[0], 'pool', config, str(tmp_path))
  records = {}
  for i in range(len(pool)):
    r = pool[i]
    records.setdefault((int(r['subject']), int(r['label'])), []).append(np.asarray(r['image']))
  for (s, e, _), image in zip(p['specs'], p['inputs']):
    assert any(np.array_equal(image, x) for x in records[(int(s), int(e))])  # the dataset's bytes
  same = p['source'] == p['target']
  np.testing.assert_array_equal(p['truth'][same], p['inputs'][same])
  assert (p['truth'][~same] != p['inputs'][~same]).any((1, 2, 3)).all()


def test_error_baselines_and_judge(tiny_pairs):
  _, _, p = tiny_pairs
  perfect = ground_truth.score(p, p['truth'])
  assert perfect['l1'] == 0.0 and perfect['l1_over_do_nothing'] == 0.0 and perfect['l1_same_emotion'] == 0.0
  assert 0.005 < perfect['l1_do_nothing'] < perfect['l1_blurred_input'] < 0.2
  assert 0.0 < perfect['l1_truth_at_mid_intensity'] < 0.5 * perfect['l1_do_nothing']  # the floor, well below
  # Perfect expressions drawn one pixel soft: a large share of the do-nothing error already.
  assert 0.3 * perfect['l1_do_nothing'] < perfect['l1_blurred_truth_where_changed'] < perfect['l1_do_nothing']
  assert 0.3 * perfect['l1_do_nothing'] < perfect['l1_input_plus_blurred_change'] < perfect['l1_do_nothing']
  assert perfect['split']['on_changed'] == perfect['split']['on_unchanged'] == 0.0
  assert 0.0 < perfect['split']['changed_pixel_share'] < 0.5
  copy = ground_truth.score(p, p['inputs'])
  assert copy['l1'] == copy['l1_do_nothing'] and copy['l1_over_do_nothing'] == 1.0
  split = copy['split']  # doing nothing errs only where the expression changes the photo, by the change
  assert split['on_changed'] == pytest.approx(split['do_nothing_on_changed'])
  assert split['on_changed'] + split['on_unchanged'] == pytest.approx(copy['l1'])
  assert split['on_unchanged'] < 0.5 * split['on_changed']  # changes of <= 5 grey levels
  inverted = ground_truth.score(p, 255 - p['inputs'])
  assert inverted['l1_over_do_nothing'] > 3
  # The change drawn: all of it and nothing else; nothing at all; half of it (rounded to grey levels); half, misplaced.
  assert perfect['change_drawn'] == pytest.approx({'share': 1.0, 'off_truth': 0.0})
  assert copy['change_drawn'] == {'share': 0.0, 'off_truth': 0.0}
  x, t = p['inputs'].astype(np.float32), p['truth'].astype(np.float32)
  half = ground_truth.score(p, np.rint(x + 0.5 * (t - x)).astype(np.uint8))['change_drawn']
  assert half['share'] == pytest.approx(0.5, abs=0.02) and half['off_truth'] < 0.1, half
  moved = np.clip(np.rint(x + 0.5 * np.roll(t - x, 3, axis=1)), 0, 255).astype(np.uint8)
  misplaced = ground_truth.score(p, moved)['change_drawn']
  assert misplaced['share'] < 0.4 and misplaced['off_truth'] > 0.3, misplaced
  assert perfect['per_target']['fear']['change_drawn_share'] == pytest.approx(1.0)
  for name in emotions.EMOTIONS:
    assert perfect['per_target'][name]['l1'] == 0.0 and perfect['per_target'][name]['l1_do_nothing'] > 0, name

  shown = {t.tobytes(): e for t, e in zip(p['truth'], p['target'])}

  def judge(images):  # a perfect reader of the renderer's expressions
    return np.eye(len(emotions.EMOTIONS))[[shown[x.tobytes()] for x in images]]

  s = ground_truth.score(p, p['inputs'], judge)
  assert s['judge_on_truth'] == 1.0 and s['judge_on_translations'] == 0.0  # copies show the source emotion
  assert s['per_target']['happiness']['judge_on_truth'] == 1.0
  assert s['num_pairs'] == int((p['source'] != p['target']).sum())


def test_without_a_procedural_pool_it_says_why():
  config = get_config('tiny')
  config.data.pool_sources = 'procedural:a@train'
  out = ground_truth.evaluate(config, [1], lambda p: p['inputs'])
  assert out['available'] is False and "'train'" in out['reason']
  config.data.pool_sources = 'procedural:a,procedural:b'
  assert 'not one procedural source' in ground_truth.evaluate(config, [1], lambda p: p['inputs'])['reason']


def test_report_table_shows_the_error_and_says_why_it_is_missing(tiny_pairs):
  _, _, p = tiny_pairs
  md = report.markdown.ground_truth_markdown(
    {
      '0': {'available': True, **ground_truth.score(p, p['truth'])},
      '1': {'available': False, 'reason': 'data.pool_sources=rafd:/x is not one procedural source'},
    }
  )
  assert '| replicate 0 | 0.0000 |' in md and '| replicate 1 |' not in md
  assert 'GAN replicate 1: no ground truth (data.pool_sources=rafd:/x is not one procedural source)' in md
  assert all(f'| {name} | 0.0000 |' in md for name in emotions.EMOTIONS)
  assert '| 0.00 | 100.0% | 0.0% |' in md  # the perfect translation draws all of the change and nothing else
