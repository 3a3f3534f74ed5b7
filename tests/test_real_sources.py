"""Readers of the licensed FER sets, on tiny fixture files written here in each dataset's real layout."""

import collections
import os
import pathlib
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image
import pytest

from configs import default
from fer_jax.data import emotions, real_sources, sources
from fer_jax.infra.errors import UserError

E = emotions.EMOTIONS
EKMAN = set(range(emotions.NUM_EKMAN))
NEUTRAL = emotions.NEUTRAL


def _img(path, value=None, size=(30, 40), mode='RGB', seed=0):
  """A small image file (random noise, or a constant grey `value`)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  w, h = size
  if value is None:
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)
  else:
    a = np.full((h, w, 3), value, np.uint8)
  im = Image.fromarray(a)
  (im.convert('L') if mode == 'L' else im).save(path)


def _config(tmp_path, **real):
  c = default.get_config('tiny')
  c.data.data_dir = str(tmp_path / 'tfds')
  for k, v in real.items():
    setattr(c.data.real, k, v)
  return c


def _load(kind, path, config, splits=('train', 'validation', 'test', 'pool', 'full')):
  src = sources.parse_sources(f'{kind}:{path}')[0]
  out = {}
  for s in splits:
    ds = sources.load(src, s, config, '/nonexistent-workdir')
    recs = [ds[i] for i in range(len(ds))]
    out[s] = recs
  return out


def _counts(recs):
  return collections.Counter(E[int(r['label'])] for r in recs)


def _subjects(recs):
  return {int(r['subject']) for r in recs}


def _assert_subject_disjoint(data):
  tr, va, te = (_subjects(data[s]) for s in ('train', 'validation', 'test'))
  assert tr and va and te
  assert not (tr & va) and not (tr & te) and not (va & te)
  assert _subjects(data['pool']) == tr  # the pool never holds a validation/test face


def _assert_prepared_nothing(data_dir):
  """No dataset, no `incomplete.*` folder: nothing half-written in the TFDS data dir (a lock file stays)."""
  left = (
    [p for p in pathlib.Path(data_dir).rglob('*') if p.is_file() and p.name != '.lock']
    if os.path.exists(data_dir)
    else []
  )
  assert not left, left


# --------------------------------------------------------------------------------------------- fixtures
RAFD_WORDS = ('angry', 'contemptuous', 'disgusted', 'fearful', 'happy', 'neutral', 'sad', 'surprised')


def _rafd(root, subjects=8):
  for s in range(1, subjects + 1):
    for word in RAFD_WORDS:
      for pose in ('090', '045'):
        for gaze in ('frontal',):
          _img(root / f'Rafd{pose}_{s:02d}_Caucasian_female_{word}_{gaze}.jpg', seed=s)
  return root


def _fer2013_csv(path, rows):
  lines = ['emotion,pixels,Usage']
  for code, value, usage in rows:
    lines.append(f'{code},{" ".join([str(value)] * 2304)},{usage}')
  path.write_text('\n'.join(lines) + '\n')
  return path


def _ckplus(root):
  # S005..S010; sequence 001 labelled (S007: contempt, dropped), sequence 002 unlabelled (skipped).
  codes = {5: 1, 6: 5, 7: 2, 8: 7, 9: 3, 10: 6}
  for s, code in codes.items():
    for seq, n in (('001', 6), ('002', 4)):
      for f in range(1, n + 1):
        _img(root / 'cohn-kanade-images' / f'S{s:03d}' / seq / f'S{s:03d}_{seq}_{f:08d}.png', value=10 * f, mode='L')
    lab = root / 'Emotion' / f'S{s:03d}' / '001' / f'S{s:03d}_001_{6:08d}_emotion.txt'
    lab.parent.mkdir(parents=True, exist_ok=True)
    lab.write_text(f'   {code:.7e}\n')
  (root / 'cohn-kanade-images' / 'S005' / '001' / '.DS_Store').write_bytes(b'junk')
  return root


OULU = ('Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise')


def _oulu(root, subjects=7, frames=5):
  for s in range(1, subjects + 1):
    for e in OULU:
      for f in range(frames):
        _img(root / 'VL' / 'Strong' / f'P{s:03d}' / e / f'{f:03d}.jpeg', value=20 * f)
  _img(root / 'NI' / 'Strong' / 'P001' / 'Anger' / '000.jpeg')  # another camera: not read by default
  return root


def _mmi_xml(path, emotion, subject):
  root = ET.Element('Session', sessionId=path.parent.name)
  if emotion is not None:
    ET.SubElement(root, 'Metatag', Name='Emotion', Value=str(emotion))
  ET.SubElement(root, 'Subject', id=str(subject))
  ET.ElementTree(root).write(path)


def _mmi(root, subjects=7, frames=7):
  sessions = root / 'Sessions'
  sid = 100
  for s in range(1, subjects + 1):
    for code in range(1, 7):
      sid += 1
      d = sessions / str(sid)
      d.mkdir(parents=True)
      _mmi_xml(d / 'session.xml', code, s)
      for f in range(frames):
        _img(d / f'S{s:03d}-{sid:03d}-{f:03d}.png', value=20 * f, mode='L')
  d = sessions / '999'  # an AU-only session: no emotion, skipped
  d.mkdir(parents=True)
  _mmi_xml(d / 'session.xml', None, 1)
  _img(d / 'S001-999-000.png')
  return root


JAFFE_CODES = ('AN', 'DI', 'FE', 'HA', 'SA', 'SU', 'NE')


def _jaffe(root, subjects=('KA', 'KL', 'KM', 'KR', 'MK', 'NA', 'NM')):
  n = 0
  for s in subjects:
    for code in JAFFE_CODES:
      n += 1
      _img(root / f'{s}.{code}1.{n}.tiff', mode='L', seed=n)
  (root / 'README').write_text('JAFFE')
  return root


AFFECTNET = {0: 'neutral', 1: 'happiness', 2: 'sadness', 3: 'surprise', 4: 'fear', 5: 'disgust', 6: 'anger'}


def _affectnet(root):
  lists = root / 'Manually_Annotated_file_lists'
  lists.mkdir(parents=True)
  images = root / 'Manually_Annotated_Images'
  header = 'subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal'
  for name, per in (('training.csv', 4), ('validation.csv', 1)):
    rows = [header]
    for code in range(11):
      for i in range(per):
        rel = f'{code + 1}/{name[0]}{code}_{i}.jpg'
        # A bright 20x20 face at (40, 10) on a dark 80x60 image: the CSV's box must be the crop.
        a = np.zeros((60, 80), np.uint8)
        a[10:30, 40:60] = 250
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(images / rel)
        rows.append(f'{rel},40,10,20,20,"1;2;3",{code},0.1,0.2')
    (lists / name).write_text('\n'.join(rows) + '\n')
  return root


# --------------------------------------------------------------------------------------------- per kind
def test_rafd_frontal_poses_subject_disjoint_splits(tmp_path):
  root = _rafd(tmp_path / 'RaFD')
  data = _load('rafd', root, _config(tmp_path))
  # 8 subjects -> 6 train, 1 validation, 1 test; one frontal image per subject and emotion; contempt dropped.
  for split, n in (('train', 6), ('validation', 1), ('test', 1)):
    assert _counts(data[split]) == {e: n for e in emotions.EKMAN}, split
  assert _counts(data['pool']) == {e: 6 for e in E}  # neutral only in the pool
  assert _counts(data['full']) == {e: 8 for e in emotions.EKMAN}
  _assert_subject_disjoint(data)
  assert _subjects(data['full']) == set(range(1, 9))
  r = data['train'][0]
  assert r['image'].shape == (32, 32, 1) and r['image'].dtype == np.uint8


def test_rafd_all_poses_and_settings_change_the_dataset(tmp_path):
  root = _rafd(tmp_path / 'RaFD', subjects=4)
  c = _config(tmp_path, rafd_poses='all', val_fraction=0.25, test_fraction=0.25)
  b = sources.builder(sources.parse_sources(f'rafd:{root}')[0], c, '')
  assert b.info.splits['full'].num_examples == 4 * 6 * 2
  c2 = _config(tmp_path, rafd_poses='all', val_fraction=0.25, test_fraction=0.25, face_crop=False)
  b2 = sources.builder(sources.parse_sources(f'rafd:{root}')[0], c2, '')
  assert b2.data_dir != b.data_dir  # a changed crop setting never reads the cropped dataset
  again = sources.builder(sources.parse_sources(f'rafd:{root}')[0], c, '')
  assert again.data_dir == b.data_dir  # and an unchanged one reuses it


def test_fer2013_usage_splits_and_codes(tmp_path):
  rows = [
    (code, 30 * code, usage)
    for usage, n in (('Training', 3), ('PublicTest', 2), ('PrivateTest', 1))
    for code in range(7)
    for _ in range(n)
  ]
  csv_path = _fer2013_csv(tmp_path / 'fer2013.csv', rows)
  for arg in (csv_path, tmp_path):  # the CSV itself or the folder holding it
    data = _load('fer2013', arg, _config(tmp_path))
    for split, n in (('train', 3), ('validation', 2), ('test', 1)):
      assert _counts(data[split]) == {e: n for e in emotions.EKMAN}, split
    assert _counts(data['pool']) == {e: 3 for e in E}
    for r in data['pool']:  # code i is EMOTIONS[i]; pixels kept (a constant row stays constant)
      assert np.all(r['image'] == 30 * int(r['label'])) and int(r['subject']) == -1


def test_ckplus_peak_frames_and_onset_neutral(tmp_path):
  root = _ckplus(tmp_path / 'CK+')
  c = _config(tmp_path, face_crop=False, val_fraction=0.2, test_fraction=0.2)
  data = _load('ckplus', root, c)
  full = data['full']
  # 5 labelled sequences (S007 is contempt): 3 peak frames each, the last 3 of 6 (grey 40, 50, 60).
  assert _counts(full) == {'anger': 3, 'happiness': 3, 'surprise': 3, 'disgust': 3, 'sadness': 3}
  assert {int(r['image'].mean()) for r in full} == {40, 50, 60}
  assert _subjects(full) == {5, 6, 8, 9, 10}
  _assert_subject_disjoint(data)
  pool_neutral = [r for r in data['pool'] if int(r['label']) == NEUTRAL]
  assert len(pool_neutral) == len(_subjects(data['train'])) and all(r['image'].mean() == 10 for r in pool_neutral)


def test_oulu_casia_last_frames_of_vl_strong(tmp_path):
  root = _oulu(tmp_path / 'OriginalImg')
  data = _load('oulu_casia', root, _config(tmp_path, face_crop=False))
  # 7 subjects -> 5 train, 1 validation, 1 test; last 3 of 5 frames per sequence.
  for split, n in (('train', 15), ('validation', 3), ('test', 3)):
    assert _counts(data[split]) == {e: n for e in emotions.EKMAN}, split
  assert {round(float(r['image'].mean())) for r in data['full']} == {40, 60, 80}
  assert _counts(data['pool'])['neutral'] == 5 * 6  # each sequence's first frame
  _assert_subject_disjoint(data)


def test_mmi_sessions_middle_frames(tmp_path):
  root = _mmi(tmp_path / 'MMI')
  data = _load('mmi', root, _config(tmp_path, face_crop=False))
  assert _counts(data['full']) == {e: 7 * 3 for e in emotions.EKMAN}  # the AU-only session is skipped
  # onset-apex-offset: the middle 3 of 7 frames (grey 40, 60, 80) carry the label
  assert {round(float(r['image'].mean())) for r in data['full']} == {40, 60, 80}
  assert _subjects(data['full']) == set(range(1, 8))
  _assert_subject_disjoint(data)


def test_mmi_session_video(tmp_path):
  cv2 = pytest.importorskip('cv2')
  root = tmp_path / 'MMI'
  for s, code in ((1, 4), (2, 6), (3, 1)):
    d = root / 'Sessions' / str(s)
    d.mkdir(parents=True)
    _mmi_xml(d / 'session.xml', code, s)
    w = cv2.VideoWriter(str(d / f'S{s:03d}-{s:03d}.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 25, (32, 32))
    for f in range(9):
      w.write(np.full((32, 32, 3), 25 * f, np.uint8))
    w.release()
  c = _config(tmp_path, face_crop=False, val_fraction=0.3, test_fraction=0.3)
  data = _load('mmi', root, c, splits=('full',))
  assert _counts(data['full']) == {'happiness': 3, 'surprise': 3, 'anger': 3}
  # frames 3, 4, 5 of 9 (MJPG is lossy: about 75, 100, 125)
  assert sorted({int(round(float(r['image'].mean()) / 25)) for r in data['full']}) == [3, 4, 5]


def test_jaffe_codes(tmp_path):
  root = _jaffe(tmp_path / 'jaffe')
  data = _load('jaffe', root, _config(tmp_path))
  assert _counts(data['full']) == {e: 7 for e in emotions.EKMAN}
  assert _counts(data['train']) == {e: 5 for e in emotions.EKMAN}
  assert _counts(data['pool'])['neutral'] == 5
  _assert_subject_disjoint(data)


def test_affectnet_csv_codes_lists_and_face_box(tmp_path):
  root = _affectnet(tmp_path / 'AffectNet')
  data = _load('affectnet', root, _config(tmp_path, val_fraction=0.25))
  # training.csv: 4 per code, a quarter to validation; validation.csv (1 per code) is the test split;
  # 7 contempt, 8 none, 9 uncertain, 10 no-face dropped.
  assert _counts(data['test']) == {e: 1 for e in emotions.EKMAN}
  assert sum(_counts(data['train']).values()) + sum(_counts(data['validation']).values()) == 4 * 6
  assert data['validation'] and not _counts(data['validation'])['neutral']
  assert _counts(data['full']) == {e: 5 for e in emotions.EKMAN}
  assert all(np.median(r['image']) > 200 for r in data['full'])  # cropped to the CSV's face box


def test_folder_with_synonyms_and_split_folders(tmp_path):
  root = tmp_path / 'faces'
  for word in ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprised', 'neutral', 'contempt'):
    for i in range(10):
      _img(root / word / f'{i}.png', seed=i)
  data = _load('folder', root, _config(tmp_path, val_fraction=0.2, test_fraction=0.2))
  # No subject ids: split per image (70 kept, contempt dropped: 14 validation, 14 test, neutral -> pool).
  assert sum(len(data[s]) for s in ('train', 'validation', 'test')) == 60 and data['validation']
  assert _counts(data['full']) == {e: 10 for e in emotions.EKMAN}
  assert all(int(r['subject']) == -1 for r in data['full'])
  fixed = tmp_path / 'fixed'
  for split, k in (('train', 3), ('test', 1)):
    for word in ('happiness', 'sadness'):
      for i in range(k):
        _img(fixed / split / word / f'{i}.jpg', seed=i)
  data = _load('folder', fixed, _config(tmp_path, val_fraction=0.34), splits=('train', 'validation', 'test'))
  assert _counts(data['test']) == {'happiness': 1, 'sadness': 1}
  assert len(data['train']) + len(data['validation']) == 6 and len(data['validation']) == 2


def test_assign_splits_is_seeded():
  from fer_jax.data.real_readers import Item  # pylint: disable=import-outside-toplevel

  items = [Item(key=str(i), label=i % 6, subject=i // 6) for i in range(60)]
  a = real_sources.assign_splits(items, 0.2, 0.2, seed=0)
  assert a == real_sources.assign_splits(items, 0.2, 0.2, seed=0)
  assert a != real_sources.assign_splits(items, 0.2, 0.2, seed=1)
  assert collections.Counter(a) == {'train': 36, 'validation': 12, 'test': 12}
  # Two subjects cannot fill three splits: train keeps one, test the other (no error, no empty train).
  assert sorted(set(real_sources.assign_splits(items[:12], 0.2, 0.2, seed=0))) == ['test', 'train']


# -------------------------------------------------------------------------------------- malformed input
def _bad_fer2013(tmp_path):
  p = _fer2013_csv(tmp_path / 'fer2013.csv', [(0, 1, 'Training')] * 3)
  p.write_text(p.read_text() + '3,' + ' '.join(['7'] * 2000) + ',Training\n')
  return 'fer2013', p, 'fer2013.csv line 5: 2000 pixel values, expected 2304'


def _bad_fer2013_token(tmp_path):
  p = _fer2013_csv(tmp_path / 'fer2013.csv', [(0, 1, 'Training')] * 2)
  p.write_text(p.read_text() + '3,' + ' '.join(['7'] * 2303) + ' 7x,Training\n')
  return 'fer2013', p, 'fer2013.csv line 4: pixels must be space-separated integers'


def _bad_image(tmp_path):
  root = _rafd(tmp_path / 'RaFD', subjects=4)
  bad = root / 'Rafd090_03_Caucasian_female_sad_frontal.jpg'
  bad.write_bytes(b'this is not a jpeg')
  return 'rafd', root, 'Rafd090_03_Caucasian_female_sad_frontal.jpg: unreadable image'


def _bad_code(tmp_path):
  root = _jaffe(tmp_path / 'jaffe')
  _img(root / 'KA.XX1.99.tiff', mode='L')
  return 'jaffe', root, "KA.XX1.99.tiff: unknown emotion code 'XX'"


def _bad_ckplus_code(tmp_path):
  root = _ckplus(tmp_path / 'CK+')
  (root / 'Emotion' / 'S006' / '001' / 'S006_001_00000006_emotion.txt').write_text('9.0\n')
  return 'ckplus', root, 'S006_001_00000006_emotion.txt: unknown emotion code 9'


def _empty_oulu(tmp_path):
  root = _oulu(tmp_path / 'OriginalImg', subjects=3, frames=2)
  for p in (root / 'VL' / 'Strong' / 'P002' / 'Fear').iterdir():
    p.unlink()
  return 'oulu_casia', root, 'P002/Fear: empty folder'


def _empty_folder(tmp_path):
  (tmp_path / 'faces' / 'happy').mkdir(parents=True)
  _img(tmp_path / 'faces' / 'sad' / '0.png')
  return 'folder', tmp_path / 'faces', 'faces/happy: empty folder'


def _missing(tmp_path):
  return 'mmi', tmp_path / 'no' / 'MMI', 'path does not exist'


@pytest.mark.parametrize(
  'case',
  [_bad_fer2013, _bad_fer2013_token, _bad_image, _bad_code, _bad_ckplus_code, _empty_oulu, _empty_folder, _missing],
)
def test_malformed_input_one_clear_error_nothing_written(tmp_path, case):
  kind, path, message = case(tmp_path)
  c = _config(tmp_path, face_crop=False)
  with pytest.raises(UserError) as err:
    sources.load(sources.parse_sources(f'{kind}:{path}')[0], 'train', c, '')
  assert message in str(err.value)
  assert '\n' not in str(err.value)
  _assert_prepared_nothing(c.data.data_dir)


def test_unreadable_image_fails_midway_and_leaves_nothing(tmp_path):
  # The bad image comes after good ones, so TFDS has started writing when it fails.
  root = _rafd(tmp_path / 'RaFD', subjects=6)
  (root / 'Rafd090_06_Caucasian_female_happy_frontal.jpg').write_bytes(b'\xff\xd8\xff truncated')
  c = _config(tmp_path)
  with pytest.raises(UserError, match='Rafd090_06_Caucasian_female_happy_frontal.jpg: unreadable image'):
    sources.builder(sources.parse_sources(f'rafd:{root}')[0], c, '')
  _assert_prepared_nothing(c.data.data_dir)
  (root / 'Rafd090_06_Caucasian_female_happy_frontal.jpg').unlink()  # fixed: the next run prepares it
  b = sources.builder(sources.parse_sources(f'rafd:{root}')[0], c, '')
  assert b.info.splits['full'].num_examples == 6 * 6 - 1


def test_face_crop_finds_a_face():
  cv2 = pytest.importorskip('cv2')
  cropper = real_sources.FaceCropper(32, crop=True)
  # No face in noise -> the centre square; a given box wins over detection.
  noise = np.random.default_rng(0).integers(0, 256, (60, 100), np.uint8)
  assert cropper.detect(noise) is None
  img = np.zeros((60, 100), np.uint8)
  img[5:25, 70:90] = 255
  out = cropper(img, box=(70, 5, 20, 20))
  assert out.shape == (32, 32) and np.median(out) == 255
  centre = real_sources.FaceCropper(32, crop=False)(img)
  assert np.median(centre) == 0
  # A drawn face (oval, brows, eyes, nose, mouth) off-centre in a large canvas is found by the cascade.
  canvas = np.full((300, 400), 128, np.uint8)
  canvas[100:228, 200:328] = _drawn_face(cv2, 128)
  x, y, w, h = cropper.detect(canvas)
  assert 195 <= x and x + w <= 333 and 95 <= y and y + h <= 233 and w >= 80
  out = cropper(canvas)
  assert out.shape == (32, 32) and abs(float(out.mean()) - float(canvas[100:228, 200:328].mean())) < 30


def _drawn_face(cv2, n):
  im = np.full((n, n), 60, np.uint8)
  c = n // 2
  cv2.ellipse(im, (c, c), (int(n * 0.36), int(n * 0.46)), 0, 0, 360, 190, -1)
  for dx in (-1, 1):
    cv2.ellipse(im, (c + dx * int(n * 0.16), int(n * 0.40)), (int(n * 0.08), int(n * 0.035)), 0, 0, 360, 40, -1)
    cv2.line(im, (c + dx * int(n * 0.08), int(n * 0.30)), (c + dx * int(n * 0.25), int(n * 0.29)), 50, 3)
  cv2.line(im, (c, int(n * 0.45)), (c, int(n * 0.60)), 140, 3)
  cv2.ellipse(im, (c, int(n * 0.72)), (int(n * 0.14), int(n * 0.04)), 0, 0, 360, 70, -1)
  return cv2.GaussianBlur(im, (5, 5), 0)


def test_an_edited_dataset_is_prepared_again_with_one_line(tmp_path, caplog):
  root = tmp_path / 'faces'
  for word in ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprised'):
    for i in range(4):
      _img(root / word / f'{i}.png', seed=i)
  c = _config(tmp_path)
  src = sources.parse_sources(f'folder:{root}')[0]
  before = sources.builder(src, c, '')
  assert before.info.splits['full'].num_examples == 24
  for i in range(4, 6):
    _img(root / 'happy' / f'{i}.png', seed=i)  # 2 images added
  real_sources.fingerprint.cache_clear()  # a new process would see the change anyway
  with caplog.at_level('WARNING'):
    after = sources.builder(src, c, '')
  assert after.info.splits['full'].num_examples == 26 and after.data_dir != before.data_dir
  assert 'changed since it was prepared' in caplog.text


def test_csv_with_a_byte_order_mark_reads_and_a_non_utf8_byte_is_named(tmp_path):
  p = _fer2013_csv(tmp_path / 'fer2013.csv', [(code, 1, 'Training') for code in range(7)] * 2)
  p.write_bytes(b'\xef\xbb\xbf' + p.read_bytes())  # as Excel saves a CSV
  c = _config(tmp_path)
  b = sources.builder(sources.parse_sources(f'fer2013:{p}')[0], c, '')
  assert b.info.splits['full'].num_examples == 12
  bad = tmp_path / 'bad' / 'fer2013.csv'
  bad.parent.mkdir()
  bad.write_bytes(p.read_bytes()[3:].replace(b'Training\n', b'Training\xff\n', 3))
  with pytest.raises(UserError, match=r'fer2013.csv line 2: not UTF-8 text'):
    sources.builder(sources.parse_sources(f'fer2013:{bad}')[0], c, '')


def test_a_tiny_image_is_refused(tmp_path):
  root = _jaffe(tmp_path / 'jaffe')
  _img(root / 'KA.HA9.99.tiff', size=(1, 1), mode='L')
  with pytest.raises(UserError, match=r'KA.HA9.99.tiff: the image is 1x1 pixels; expected at least 16x16'):
    sources.builder(sources.parse_sources(f'jaffe:{root}')[0], _config(tmp_path), '')


def test_sequences_without_subject_ids_stay_in_one_split():
  from fer_jax.data.real_readers import Item  # pylint: disable=import-outside-toplevel

  items = [Item(key=f's{s}/f{f}', label=s % 6, sequence=f's{s}') for s in range(30) for f in range(3)]
  splits = real_sources.assign_splits(items, 0.2, 0.2, seed=0)
  by_sequence = collections.defaultdict(set)
  for item, split in zip(items, splits):
    by_sequence[item.sequence].add(split)
  assert all(len(v) == 1 for v in by_sequence.values()) and set(splits) == {'train', 'validation', 'test'}


@pytest.mark.parametrize(
  'pool,test,refused',
  [
    ('mmi:/data/MMI', 'mmi:/data/MMI@full', True),
    ('rafd:/data/RaFD', 'rafd:/data/RaFD', False),  # pool = train split, test = test split
    ('procedural:a', 'procedural:a,procedural:b', False),
    ('procedural:a@test', 'procedural:a', True),
  ],
)
def test_a_pool_sharing_images_with_a_test_source_is_refused(pool, test, refused):
  c = default.get_config('tiny')
  c.data.pool_sources, c.data.test_sources = pool, test
  if refused:
    with pytest.raises(UserError, match='share images: the GANs would learn from test faces'):
      sources.check_pool_disjoint(c)
  else:
    sources.check_pool_disjoint(c)


def test_folder_files_named_by_subject_are_split_by_subject(tmp_path):
  root = tmp_path / 'faces'
  for s in range(1, 11):
    for word in ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprised'):
      for f in range(2):  # two near-identical frames of one recording
        _img(root / word / f'S{s:03d}_{word}_{f}.png', seed=s)
  data = _load('folder', root, _config(tmp_path, val_fraction=0.2, test_fraction=0.2))
  _assert_subject_disjoint(data)
  assert _subjects(data['full']) == set(range(1, 11))
