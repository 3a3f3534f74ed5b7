"""Licensed FER datasets as TFDS builders (ArrayRecord, `manual_dir`, no TensorFlow) and source kinds.

`rafd:/data/RaFD`, `oulu_casia:/data/OriginalImg`, `mmi:/data/MMI`, `ckplus:/data/CK+`, `jaffe:/data/jaffe`,
`affectnet:/data/AffectNet`, `fer2013:/data/fer2013.csv` and `folder:/data/anything` read a dataset in the
layout it is distributed in (see `real_readers` for each layout) and prepare it once into the TFDS data dir.

Features match the procedural builder: `image` uint8 [S, S, 1] (greyscale, face-cropped with OpenCV's
frontal-face Haar cascade unless data.real.face_crop is off, else centre-cropped to a square; resized to
data.image_size), `label` ClassLabel(EMOTIONS), `subject` int32 (-1 when the dataset has no subject ids).
Splits:
  train / validation / test   the 6 Ekman emotions; subject-disjoint (seeded by data.real.split_seed,
                              sizes by data.real.val_fraction / test_fraction) when subjects are known,
                              else per image; a split fixed by the distribution (FER2013's Usage,
                              AffectNet's lists) is kept.
  pool                        the train split's images with all 7 classes (neutral too): what a GAN may
                              learn from without ever seeing a validation/test face.
  full                        every Ekman image of the dataset: the cross-dataset test set (`mmi:PATH@full`).

The builder config's name carries a hash of (path, image size, crop and split settings, the kind's
options) and a fingerprint of the dataset's files (names, sizes, modification times), so neither a changed
setting nor an edited dataset ever reads a stale prepared copy. A malformed dataset raises one UserError naming
the file, and leaves nothing behind in the data dir (TFDS writes into `incomplete.*` and renames at the end;
we remove what a failure leaves).
"""

import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import os
import pathlib
import shutil
import threading

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from fer_jax.data import emotions, real_readers, sources
from fer_jax.infra.errors import UserError

SPLITS = ('train', 'validation', 'test', 'pool', 'full')
FACE_MARGIN = 0.15  # the Haar box is brow-to-mouth tight; widen it to keep the forehead and chin
_CACHE_BYTES = 1 << 30  # processed images kept in memory while the splits (which overlap) are written

SPLIT_RULE = 2  # 2: recordings without subject ids are kept whole (1 split them frame by frame)
# data.real fields that matter to every kind; each builder adds the options of its kind.
_COMMON = ('val_fraction', 'test_fraction', 'split_seed')


@dataclasses.dataclass(eq=False)
class RealFacesConfig(tfds.core.BuilderConfig):
  path: str = ''  # the dataset as given in the source name (absolute)
  file: str = ''  # a file inside manual_dir (FER2013's CSV), '' when the dataset is the folder itself
  image_size: int = 64
  face_crop: bool = True
  val_fraction: float = 0.15
  test_fraction: float = 0.15
  split_seed: int = 0
  peak_frames: int = 3
  onset_neutral: bool = True
  rafd_poses: str = '090'
  oulu_subset: str = 'VL/Strong'
  fingerprint: str = ''  # of the files read (names, sizes, modification times): an edited dataset is rebuilt


class _RealFaces(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A licensed FER dataset read from `manual_dir` in its distributed layout."""

  VERSION = tfds.core.Version('1.0.0')
  KIND = ''
  OPTIONS = ()  # the data.real fields this kind reads
  CROPS = True  # whether data.real.face_crop applies (FER2013 is distributed already cropped)
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Pass the dataset folder as manual_dir (see fer_jax/data/real_readers.py).'

  def _info(self):
    c = self.builder_config
    return tfds.core.DatasetInfo(
      builder=self,
      features=_features(c.image_size),
      description=f'{self.KIND} read from {c.path}',
      metadata=tfds.core.MetadataDict(settings=settings(type(self), c)),
    )

  def _split_generators(self, dl_manager):
    c = self.builder_config
    root = pathlib.Path(os.fspath(dl_manager.manual_dir))
    items = real_readers.READERS[self.KIND](root / c.file if c.file else root, c)
    if not any(it.subject >= 0 or it.sequence for it in items) and not any(it.split for it in items):
      logging.warning(
        '%s:%s has no subject ids: its images are split one by one, so near-identical frames of '
        'one person or recording can land in train and test (folder: name files S<subject>_..., '
        'CK+ style, to split by subject)',
        self.KIND,
        c.path,
      )
    assigned = assign_splits(items, c.val_fraction, c.test_fraction, c.split_seed)
    per_split = {s: [] for s in SPLITS}
    for item, split in zip(items, assigned):
      if split is None:
        continue
      ekman = item.label < emotions.NUM_EKMAN
      if ekman:
        per_split[split].append(item)
        per_split['full'].append(item)
      if split == 'train':
        per_split['pool'].append(item)
    if not per_split['full']:
      raise UserError(f'{c.path}: no images of the 6 Ekman emotions (only neutral or dropped labels)')
    cropper = FaceCropper(c.image_size, c.face_crop and self.CROPS)
    cache = _Cache(c.image_size, len(items))
    return {s: self._generate_examples(v, cropper, cache) for s, v in per_split.items() if v}

  def _generate_examples(self, items, cropper, cache):
    def process(item):
      img = cache.get(item.key)
      if img is None:
        img = cropper(real_readers.load_grey(item), item.box)
        cache.put(item.key, img)
      return img

    # Decoding and face detection release the GIL: a few threads keep the writer fed.
    workers = min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      for start in range(0, len(items), 256):
        chunk = items[start : start + 256]
        for item, img in zip(chunk, pool.map(process, chunk)):
          yield item.key, {'image': img[..., None], 'label': int(item.label), 'subject': np.int32(item.subject)}


def _features(image_size):
  return tfds.features.FeaturesDict(
    {
      'image': tfds.features.Tensor(shape=(image_size, image_size, 1), dtype=np.uint8),
      'label': tfds.features.ClassLabel(names=emotions.EMOTIONS),
      'subject': tfds.features.Tensor(shape=(), dtype=np.int32),
    }
  )


class RealFer2013(_RealFaces):
  KIND, CROPS = 'fer2013', False
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'fer2013.csv (emotion,pixels,Usage) from the Kaggle FER challenge.'


class RealRafd(_RealFaces):
  KIND, OPTIONS = 'rafd', ('rafd_poses',)
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'The RaFD images (Rafd090_01_Caucasian_female_angry_frontal.jpg ...).'


class RealCkplus(_RealFaces):
  KIND, OPTIONS = 'ckplus', ('peak_frames', 'onset_neutral')
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'The CK+ folder holding cohn-kanade-images/ and Emotion/.'


class RealOuluCasia(_RealFaces):
  KIND, OPTIONS = 'oulu_casia', ('peak_frames', 'onset_neutral', 'oulu_subset')
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Oulu-CASIA OriginalImg/ (VL/Strong/P001/Anger/*.jpeg ...).'


class RealMmi(_RealFaces):
  KIND, OPTIONS = 'mmi', ('peak_frames', 'onset_neutral')
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'The MMI folder holding Sessions/<id>/ (session XML + frames or video).'


class RealJaffe(_RealFaces):
  KIND = 'jaffe'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'The JAFFE folder of KA.AN1.39.tiff files.'


class RealAffectnet(_RealFaces):
  KIND = 'affectnet'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'AffectNet: Manually_Annotated_file_lists/ and Manually_Annotated_Images/.'


class RealFolder(_RealFaces):
  KIND = 'folder'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'A folder with one subfolder per emotion (anger, happiness, ...).'


BUILDERS = {
  cls.KIND: cls
  for cls in (RealFer2013, RealRafd, RealCkplus, RealOuluCasia, RealMmi, RealJaffe, RealAffectnet, RealFolder)
}


def settings(builder_cls, c):
  """What the prepared data depends on: the name hash and the dataset's metadata."""
  out = {
    'kind': builder_cls.KIND,
    'path': c.path,
    'image_size': int(c.image_size),
    'split_rule': SPLIT_RULE,
    'face_crop': bool(c.face_crop and builder_cls.CROPS),
  }
  if out['face_crop']:
    out['face_margin'] = FACE_MARGIN
  out.update({k: getattr(c, k) for k in _COMMON + builder_cls.OPTIONS})
  out['fingerprint'] = c.fingerprint
  return out


@functools.lru_cache(maxsize=64)
def fingerprint(path):
  """A digest of every (relative name, size, mtime) under `path` (a folder, or one file): what a copy, an
  added or removed image or an edited CSV changes. Once per process and path (a walk of a large dataset
  takes seconds)."""
  h = hashlib.sha1()
  root = pathlib.Path(path)
  files = (
    [root]
    if root.is_file()
    else sorted(
      p
      for p in root.rglob('*')
      if p.is_file()
      and not any(part.startswith('.') or part in real_readers.IGNORED_DIRS for part in p.relative_to(root).parts)
    )
  )
  for p in files:
    st = p.stat()
    h.update(f'{p.relative_to(root) if p != root else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
  return h.hexdigest()[:12]


# ----------------------------------------------------------------------------------------- face crop
class FaceCropper:
  """Greyscale image -> [S, S] uint8: the face (given box, else the largest Haar detection, else the centre
  square) resized to S. With crop off, cv2 is never imported: the centre square is used."""

  def __init__(self, size, crop):
    self.size, self.crop = int(size), bool(crop)
    self._local = threading.local()
    if self.crop:
      self._cascade()  # fail early (and clearly) if OpenCV is missing

  def _cascade(self):
    c = getattr(self._local, 'cascade', None)
    if c is None:
      try:
        import cv2  # pylint: disable=import-outside-toplevel
      except ImportError:
        raise UserError(
          'data.real.face_crop needs OpenCV: pip install "opencv-python-headless<5" '
          '(or set --config.data.real.face_crop=False)'
        ) from None
      path = os.path.join(cv2.data.haarcascades, 'haarcascade_frontalface_default.xml')
      c = cv2.CascadeClassifier(path) if hasattr(cv2, 'CascadeClassifier') else None
      if c is None or c.empty():
        raise UserError(
          f'OpenCV {cv2.__version__} has no usable frontal-face Haar cascade at {path}; install '
          '"opencv-python-headless<5" or set --config.data.real.face_crop=False'
        )
      self._local.cascade = c
    return c

  def detect(self, grey):
    """The largest frontal face (x, y, w, h) or None."""
    h, w = grey.shape
    scale = min(1.0, 320.0 / max(h, w))  # detection on a small copy: same faces, a fraction of the time
    small = grey
    if scale < 1.0:
      from PIL import Image  # pylint: disable=import-outside-toplevel

      small = np.asarray(
        Image.fromarray(grey).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
      )
    side = min(small.shape)
    min_size = max(12, side // 5)
    if side < min_size + 2:
      return None
    faces = self._cascade().detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    if len(faces) == 0:
      return None
    x, y, fw, fh = max(faces, key=lambda f: f[2] * f[3])
    return tuple(int(round(v / scale)) for v in (x, y, fw, fh))

  def __call__(self, grey, box=None):
    h, w = grey.shape
    if self.crop and box is None:
      box = self.detect(grey)
    if self.crop and box is not None:
      x, y, bw, bh = box
      side = int(round(max(bw, bh) * (1 + 2 * FACE_MARGIN)))
      cx, cy = x + bw / 2, y + bh / 2
    else:
      side, cx, cy = min(h, w), w / 2, h / 2
    side = max(1, min(side, h, w))
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    face = grey[y0 : y0 + side, x0 : x0 + side]
    if face.shape != (self.size, self.size):
      from PIL import Image  # pylint: disable=import-outside-toplevel

      face = np.asarray(Image.fromarray(face).resize((self.size, self.size), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(face, np.uint8)


class _Cache:
  """Processed images by key, while they fit in _CACHE_BYTES (train images are written to 3 splits)."""

  def __init__(self, size, n):
    self._on = n * size * size <= _CACHE_BYTES
    self._d = {}

  def get(self, key):
    return self._d.get(key)

  def put(self, key, img):
    if self._on:
      self._d[key] = img


# ---------------------------------------------------------------------------------------------- splits
def _partition(groups, val_fraction, test_fraction, rng):
  """Shuffled groups -> {group: split} with about the requested fractions (each non-empty if asked and
  there are enough groups; train always keeps one)."""
  groups = list(groups)
  rng.shuffle(groups)
  n = len(groups)
  n_test = int(round(n * test_fraction)) if test_fraction > 0 else 0
  n_val = int(round(n * val_fraction)) if val_fraction > 0 else 0
  if test_fraction > 0:
    n_test = max(1, n_test)
  if val_fraction > 0:
    n_val = max(1, n_val)
  while n_test + n_val > max(0, n - 1):  # too few subjects: train keeps one, the others shrink
    if n_val >= n_test:
      n_val -= 1
    else:
      n_test -= 1
  out = {g: 'test' for g in groups[:n_test]}
  out.update({g: 'validation' for g in groups[n_test : n_test + n_val]})
  out.update({g: 'train' for g in groups[n_test + n_val :]})
  return out


def assign_splits(items, val_fraction, test_fraction, seed):
  """Per item 'train' | 'validation' | 'test' (None: dropped).

  Subject-disjoint when the items have subjects, else per item; a split fixed by the distribution is
  kept, and a fixed train split without a fixed validation split gives up val_fraction of it."""
  if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
    raise UserError(
      f'data.real.val_fraction={val_fraction} and test_fraction={test_fraction}: expected '
      'fractions in [0, 1) summing to less than 1'
    )
  rng = np.random.default_rng(int(seed))

  def group(item):
    # Without subject ids, the frames of one recording stay together (near-duplicates across train and
    # test would inflate test accuracy); single images without subjects are split one by one.
    if item.subject >= 0:
      return ('subject', item.subject)
    return ('sequence', item.sequence) if item.sequence else ('item', item.key)

  fixed = {it.split for it in items if it.split}
  if not fixed:
    table = _partition(sorted({group(it) for it in items}), val_fraction, test_fraction, rng)
    return [table[group(it)] for it in items]
  out = [it.split for it in items]
  if 'validation' not in fixed and val_fraction > 0:
    train_groups = sorted({group(it) for it in items if it.split == 'train'})
    if train_groups:
      table = _partition(train_groups, val_fraction, 0.0, rng)
      out = [table[group(it)] if it.split == 'train' else s for it, s in zip(items, out)]
  return out


# ------------------------------------------------------------------------------------------ preparing
def _remove_partial(b, data_dir):
  """After a failed prepare (under its lock): no `incomplete.*` folder and no empty folder of this builder
  stays behind (the lock file stays: removing it would let a waiting process and a new one both in)."""
  version_dir = pathlib.Path(os.fspath(b.data_dir))
  config_dir = version_dir.parent
  if config_dir.is_dir():
    for p in config_dir.iterdir():
      if p.name.startswith('incomplete.') or (p.name.startswith('incomplete') and p.is_dir()):
        shutil.rmtree(p, ignore_errors=True)
  stop = pathlib.Path(data_dir).resolve()

  def prune(d):  # empty folders up to (not including) the data dir
    while d.resolve() != stop and stop in d.resolve().parents:
      if d.is_dir() and not any(d.iterdir()):
        d.rmdir()
      elif d.exists():
        return
      d = d.parent

  prune(version_dir)
  prune(stop / 'downloads' / 'extracted')  # TFDS's download manager makes these even with manual_dir


def _user_error(e):
  seen = set()
  while e is not None and id(e) not in seen:
    if isinstance(e, UserError):
      return e
    seen.add(id(e))
    e = e.__cause__ or e.__context__
  return None


def config_from(kind, path, config, file=''):
  r = config.data.real
  c = RealFacesConfig(
    name='pending',
    path=str(path),
    file=file,
    image_size=int(config.data.image_size),
    face_crop=bool(r.face_crop),
    val_fraction=float(r.val_fraction),
    test_fraction=float(r.test_fraction),
    split_seed=int(r.split_seed),
    peak_frames=int(r.peak_frames),
    onset_neutral=bool(r.onset_neutral),
    rafd_poses=str(r.rafd_poses),
    oulu_subset=str(r.oulu_subset),
    fingerprint=fingerprint(str(path)),
  )  # the folder, or the file itself
  c.name = f'{int(config.data.image_size)}px_{_digest(kind, c, fingerprint="")}_{c.fingerprint[:8]}'
  return c


def _digest(kind, c, **replace):
  fields = {**settings(BUILDERS[kind], c), **replace}
  return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def _note_changed(kind, b):
  """One line when the dataset was prepared before with the same settings but its files have changed."""
  version_dir = pathlib.Path(os.fspath(b.data_dir))
  if (version_dir / 'dataset_info.json').exists():
    return
  name = version_dir.parent.name
  stale = [
    p
    for p in version_dir.parent.parent.glob(name.rsplit('_', 1)[0] + '_*')
    if p.name != name and any(p.glob('*/dataset_info.json'))
  ]
  if stale:
    logging.warning(
      '%s:%s changed since it was prepared into %s (files added, removed or modified): preparing it again',
      kind,
      b.builder_config.path,
      stale[0],
    )


def make(kind, arg, config, data_dir):
  """The prepared builder of `kind:arg` (prepared on first use)."""
  if not arg:
    raise UserError(f'{kind}: no path; expected {kind}:/path/to/the/dataset')
  path = pathlib.Path(os.path.expanduser(arg)).absolute()
  if not path.exists():
    raise UserError(
      f'{kind}:{arg}: path does not exist: {path} (point the source at your copy, e.g. '
      f'--config.data.train_sources={kind}:/path/to/{kind})'
    )
  if path.is_dir() and not any(p for p in path.iterdir() if not p.name.startswith('.')):
    raise UserError(f'{kind}:{arg}: empty folder: {path}')
  if path.is_file() and kind != 'fer2013':
    raise UserError(f'{kind}:{arg}: {path} is a file; expected the dataset folder')
  manual, file = (path, '') if path.is_dir() else (path.parent, path.name)
  b = BUILDERS[kind](config=config_from(kind, path, config, file), data_dir=data_dir, file_format='array_record')
  _note_changed(kind, b)
  try:
    sources.prepare(
      b,
      on_failure=lambda: _remove_partial(b, data_dir),
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)),
    )
  except BaseException as e:
    ue = _user_error(e)
    if ue is not None and ue is not e:
      raise UserError(str(ue)) from None
    raise
  return b


def _register(kind):
  @sources.register(kind)
  def _make(arg, config, data_dir):
    return make(kind, arg, config, data_dir)

  return _make


for _kind in BUILDERS:
  _register(_kind)
