"""Readers of licensed FER datasets in the layout each is distributed in.

Each `read_KIND(path, cfg)` lists the dataset as `Item`s (which file, which label in `emotions.EMOTIONS`
order, which subject, sometimes a split fixed by the distribution) without decoding any image, so that a
malformed dataset fails with one `UserError` naming the file before anything is written. Images are decoded
later, one by one, by `load_grey`. Layouts read (PATH is what follows `KIND:` in a source name):

  fer2013     PATH = fer2013.csv (or a folder holding fer2013.csv / icml_face_data.csv): columns
              `emotion,pixels,Usage`; emotion 0..6 = angry, disgust, fear, happy, sad, surprise, neutral;
              48x48 = 2304 space-separated pixels; Usage Training/PublicTest/PrivateTest = train/validation/
              test. No subject ids.
  rafd        PATH/**/Rafd{pose}_{subject}_{ethnicity}_{gender}_{emotion}_{gaze}.jpg, e.g.
              Rafd090_01_Caucasian_female_angry_frontal.jpg; poses kept: data.real.rafd_poses.
  ckplus      PATH/cohn-kanade-images/S005/001/S005_001_00000011.png and
              PATH/Emotion/S005/001/S005_001_00000011_emotion.txt (one code: 0 neutral, 1 anger,
              2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise). Labelled sequences only; their
              last data.real.peak_frames frames carry the label, the first frame is neutral (onset_neutral).
  oulu_casia  PATH = OriginalImg: PATH/VL/Strong/P001/Anger/000.jpeg (data.real.oulu_subset picks VL/Strong;
              PATH may also be the folder holding P001/... directly). Last peak_frames frames per sequence,
              first frame neutral.
  mmi         PATH/Sessions/<session>/ (as downloaded from mmifacedb.eu): an XML session file whose
              `<Metatag Name="Emotion" Value="1..6"/>` (1 anger, 2 disgust, 3 fear, 4 happiness, 5 sadness,
              6 surprise) labels the session, the subject from `<Subject id=..>`/`Metatag Name="Subject"` or
              the media name `S001-...`, and the frames as images or one video (.avi/.mp4/.wmv/.mov).
              Sessions without an emotion (AU-only sessions) are skipped. MMI sequences are onset-apex-
              offset, so the MIDDLE peak_frames frames carry the label and the first frame is neutral.
              Also read: a folder-per-emotion export PATH/<emotion>/S001_*.png (subject from `S<digits>`).
  jaffe       PATH/**/KA.AN1.39.tiff: subject initials, expression code AN DI FE HA SA SU NE, repeat, id.
  affectnet   PATH/Manually_Annotated_file_lists/{training,validation}.csv (or the CSVs in PATH) with
              `subDirectory_filePath,face_x,face_y,face_width,face_height,...,expression`, images under
              PATH/Manually_Annotated_Images/ (or PATH/Manually_Annotated/Manually_Annotated_Images/ or
              PATH). expression 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger; 7
              contempt, 8 none, 9 uncertain, 10 no-face are dropped. training.csv -> train/validation,
              validation.csv -> test (AffectNet's test set is not public). The CSV's face box is the crop.
  folder      PATH/<emotion>/**/*.png|jpg|... (emotion names or common synonyms, e.g. happy, angry,
              surprised; contempt dropped), or PATH/<train|validation|val|test>/<emotion>/... for fixed
              splits. Files named S<number>_... (CK+ style, e.g. S005_001_00000011.png) carry their subject
              id and are split by subject; other names are split image by image (with a warning).
"""

import csv
import dataclasses
import os
import pathlib
import re
import warnings
import xml.etree.ElementTree as ET

import numpy as np

from fer_jax.data import emotions
from fer_jax.infra.errors import UserError

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.pgm', '.ppm', '.gif')
VIDEO_EXTS = ('.avi', '.mp4', '.wmv', '.mov', '.mpg', '.mpeg')
IGNORED_DIRS = ('__MACOSX',)
NO_SUBJECT = -1
DROPPED = None  # a label the study does not use (contempt): the item is skipped

# Emotion words as the datasets spell them -> EMOTIONS index (DROPPED for contempt).
_WORDS = {
  'anger': 'anger',
  'angry': 'anger',
  'disgust': 'disgust',
  'disgusted': 'disgust',
  'fear': 'fear',
  'fearful': 'fear',
  'afraid': 'fear',
  'scared': 'fear',
  'happiness': 'happiness',
  'happy': 'happiness',
  'joy': 'happiness',
  'sadness': 'sadness',
  'sad': 'sadness',
  'surprise': 'surprise',
  'surprised': 'surprise',
  'neutral': 'neutral',
  'contempt': DROPPED,
  'contemptuous': DROPPED,
}
_FER2013 = dict(enumerate(emotions.EMOTIONS))  # FER2013's codes are our label order
_CKPLUS = {0: 'neutral', 1: 'anger', 2: DROPPED, 3: 'disgust', 4: 'fear', 5: 'happiness', 6: 'sadness', 7: 'surprise'}
_MMI = {1: 'anger', 2: 'disgust', 3: 'fear', 4: 'happiness', 5: 'sadness', 6: 'surprise'}
_JAFFE = {
  'AN': 'anger',
  'DI': 'disgust',
  'FE': 'fear',
  'HA': 'happiness',
  'SA': 'sadness',
  'SU': 'surprise',
  'NE': 'neutral',
}
_AFFECTNET = {
  0: 'neutral',
  1: 'happiness',
  2: 'sadness',
  3: 'surprise',
  4: 'fear',
  5: 'disgust',
  6: 'anger',
  7: DROPPED,
  8: DROPPED,
  9: DROPPED,
  10: DROPPED,
}
_SPLIT_DIRS = {
  'train': 'train',
  'training': 'train',
  'validation': 'validation',
  'val': 'validation',
  'valid': 'validation',
  'test': 'test',
  'testing': 'test',
}


@dataclasses.dataclass(frozen=True)
class Item:
  key: str  # unique and stable within the dataset (relative path, row, frame)
  label: int  # index in emotions.EMOTIONS
  subject: int = NO_SUBJECT
  file: str = ''  # the file to decode (or the CSV the pixels came from)
  split: str | None = None  # fixed by the distribution (FER2013's Usage, AffectNet's lists)
  pixels: np.ndarray | None = dataclasses.field(default=None, compare=False)  # already decoded
  box: tuple[int, int, int, int] | None = None  # face box (x, y, w, h) given by the dataset
  frame: int | None = None  # frame index in a video file
  sequence: str = ''  # the recording a frame comes from: without subject ids, splits keep it whole


def _label(table, code, where):
  if code not in table:
    raise UserError(f'{where}: unknown emotion code {code!r}; expected one of {", ".join(str(k) for k in table)}')
  name = table[code]
  return None if name is DROPPED else emotions.EMOTIONS.index(name)


def _word_label(word, where):
  return _label(_WORDS, word.strip().lower().replace(' ', ''), where)


def _visible(p):
  return not p.name.startswith('.') and p.name not in IGNORED_DIRS


def _images(folder, recursive=False):
  it = folder.rglob('*') if recursive else folder.iterdir()
  return sorted(
    p
    for p in it
    if p.is_file()
    and _visible(p)
    and p.suffix.lower() in IMAGE_EXTS
    and not any(part.startswith('.') for part in p.relative_to(folder).parts)
  )


def _subdirs(folder):
  return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def _rel(p, root):
  return p.relative_to(root).as_posix()


def _nonempty(items, root, layout):
  if not items:
    raise UserError(f'{root}: no labelled images found (empty folder?); expected {layout}')
  return items


def _sequence(frames, label, subject, root, cfg, middle=False):
  """Peak frames (last ones, or the middle ones for onset-apex-offset sequences) + the onset as neutral."""
  n, k = len(frames), max(1, int(cfg.peak_frames))
  start = max(0, (n - k) // 2) if middle else max(0, n - k)
  peak = list(range(start, min(n, start + k)))
  out = [(i, label) for i in peak]
  if cfg.onset_neutral and 0 not in peak:
    out.append((0, emotions.NEUTRAL))

  def key(frame):
    return _rel(frame, root) if isinstance(frame, pathlib.Path) else str(frame)

  first = frames[0]
  sequence = _rel(first.parent, root) if isinstance(first, pathlib.Path) else str(first).rsplit('#', 1)[0]
  return [
    Item(key=key(frames[i]), label=lab, subject=subject, file=str(frames[i]), sequence=sequence) for i, lab in out
  ]


# ----------------------------------------------------------------------------------------------- FER2013
class _CsvLines:
  """Text lines of a CSV for `csv.reader`, decoded one by one so that a byte that is not UTF-8 is one error
  naming the file and line; a byte-order mark (Excel writes one) is dropped."""

  def __init__(self, f, path):
    self.f, self.path, self.line, self._pending = f, path, 0, []

  def __iter__(self):
    return self

  def __next__(self):
    while not self._pending:  # a file of CR-only line ends ("CSV (Macintosh)") arrives as one b'\n' line
      self._pending = next(self.f).splitlines(keepends=True)[::-1]
    raw = self._pending.pop()
    self.line += 1
    try:
      text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
      raise UserError(
        f'{self.path} line {self.line}: not UTF-8 text ({e.reason} at byte {e.start}); expected a UTF-8 CSV'
      ) from None
    return text[1:] if self.line == 1 and text.startswith('\ufeff') else text


def _open_csv(path):
  return open(path, 'rb')


def _csv_rows(reader, lines):
  """Rows of `reader` (over `lines`, a _CsvLines); a malformed row is one error naming the file and line."""
  while True:
    try:
      row = next(reader)
    except StopIteration:
      return
    except csv.Error as e:
      raise UserError(f'{lines.path} line {lines.line}: malformed CSV ({e})') from None
    yield row


def read_fer2013(path, cfg):
  del cfg
  path = pathlib.Path(path)
  if path.is_dir():
    found = [path / n for n in ('fer2013.csv', 'icml_face_data.csv') if (path / n).is_file()]
    if not found:
      raise UserError(
        f'{path}: no fer2013.csv in this folder; expected the FER2013 CSV '
        '(columns emotion,pixels,Usage) or a folder holding it'
      )
    path = found[0]
  items = []
  with _open_csv(path) as f:
    lines = _CsvLines(f, path)
    rows = _csv_rows(csv.reader(lines), lines)
    header = [h.strip().lower() for h in next(rows, [])]
    if 'emotion' not in header or 'pixels' not in header:
      raise UserError(f'{path}: header {",".join(header)!r} lacks emotion/pixels; expected emotion,pixels,Usage')
    ie, ip = header.index('emotion'), header.index('pixels')
    iu = header.index('usage') if 'usage' in header else None
    usage = {'training': 'train', 'publictest': 'validation', 'privatetest': 'test'}
    for row in rows:
      line = lines.line
      if not row:
        continue
      where = f'{path} line {line}'
      if len(row) != len(header):
        raise UserError(f'{where}: {len(row)} fields, expected {len(header)} ({",".join(header)})')
      try:
        code = int(row[ie])
      except ValueError:
        code = row[ie]
      label = _label(_FER2013, code, where)
      try:
        with warnings.catch_warnings():  # numpy warns (instead of raising) on a token it cannot parse
          warnings.simplefilter('error')
          pixels = np.fromstring(row[ip], dtype=np.int32, sep=' ')  # 6x faster than split + int
      except (ValueError, DeprecationWarning):
        raise UserError(f'{where}: pixels must be space-separated integers 0..255') from None
      if pixels.size != 48 * 48:
        raise UserError(f'{where}: {pixels.size} pixel values, expected 2304 (48x48)')
      if pixels.min() < 0 or pixels.max() > 255:
        raise UserError(f'{where}: pixel values outside 0..255')
      split = None
      if iu is not None:
        split = usage.get(row[iu].strip().lower())
        if split is None:
          raise UserError(f'{where}: unknown Usage {row[iu]!r}; expected Training, PublicTest or PrivateTest')
      if label is not None:
        items.append(
          Item(
            key=f'row{line}', label=label, file=str(path), split=split, pixels=pixels.astype(np.uint8).reshape(48, 48)
          )
        )
  return _nonempty(items, path, 'rows emotion,pixels,Usage')


# -------------------------------------------------------------------------------------------------- RaFD
_RAFD = re.compile(r'^Rafd(\d{3})_(\d+)_([A-Za-z-]+)_([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)$')


def read_rafd(root, cfg):
  poses = {p.strip() for p in str(cfg.rafd_poses).split(',') if p.strip()}
  items = []
  for p in _images(root, recursive=True):
    m = _RAFD.match(p.stem)
    if not m:
      raise UserError(
        f'{p}: not a RaFD file name; expected Rafd{{pose}}_{{subject}}_{{ethnicity}}_{{gender}}_'
        '{emotion}_{gaze}.jpg, e.g. Rafd090_01_Caucasian_female_angry_frontal.jpg'
      )
    pose, subject, _, _, word, _ = m.groups()
    label = _word_label(word, p)
    if label is not None and ('all' in poses or pose in poses):
      items.append(Item(key=_rel(p, root), label=label, subject=int(subject), file=str(p)))
  return _nonempty(
    items, root, f'Rafd{{pose}}_{{subject}}_..._{{emotion}}_{{gaze}}.jpg files with pose in {sorted(poses)}'
  )


# --------------------------------------------------------------------------------------------------- CK+
def _find_dir(root, names):
  for base in (root, *_subdirs(root)):
    for n in names:
      if (base / n).is_dir():
        return base / n
  return None


def read_ckplus(root, cfg):
  images = _find_dir(root, ('cohn-kanade-images', 'extended-cohn-kanade-images'))
  labels = _find_dir(root, ('Emotion', 'Emotion_labels'))
  if images is None or labels is None:
    raise UserError(
      f'{root}: expected CK+ folders cohn-kanade-images/S005/001/*.png and Emotion/S005/001/*_emotion.txt'
    )
  if (labels / 'Emotion').is_dir():
    labels = labels / 'Emotion'
  items = []
  for txt in sorted(labels.rglob('*_emotion.txt')):
    rel = txt.parent.relative_to(labels)
    try:
      code = float(txt.read_text().split()[0])
    except (ValueError, IndexError):
      raise UserError(f'{txt}: expected one emotion code (a number 0..7)') from None
    if code != int(code):
      raise UserError(f'{txt}: unknown emotion code {code!r}; expected an integer 0..7')
    label = _label(_CKPLUS, int(code), txt)
    if label is None:
      continue
    seq = images / rel
    frames = _images(seq) if seq.is_dir() else []
    if not frames:
      raise UserError(f'{seq}: no frames for the labelled sequence {txt.name} (empty or missing folder)')
    m = re.match(r'^S(\d+)$', rel.parts[0]) if rel.parts else None
    subject = int(m.group(1)) if m else NO_SUBJECT
    items += _sequence(frames, label, subject, root, cfg)
  return _nonempty(items, root, 'Emotion/S005/001/*_emotion.txt labels with frames in cohn-kanade-images/')


# -------------------------------------------------------------------------------------------- Oulu-CASIA
def read_oulu_casia(root, cfg):
  subject_dir = re.compile(r'^P(\d+)$')
  base = None
  for cand in (root / cfg.oulu_subset, root / 'OriginalImg' / cfg.oulu_subset, root):
    if cand.is_dir() and any(subject_dir.match(d.name) for d in _subdirs(cand)):
      base = cand
      break
  if base is None:
    raise UserError(
      f'{root}: expected Oulu-CASIA OriginalImg/{cfg.oulu_subset}/P001/Anger/*.jpeg '
      '(or the P001/... subject folders directly)'
    )
  items = []
  for sdir in _subdirs(base):
    m = subject_dir.match(sdir.name)
    if not m:
      continue
    for edir in _subdirs(sdir):
      label = _word_label(edir.name, edir)
      if label is None:
        continue
      frames = _images(edir)
      if not frames:
        raise UserError(f'{edir}: empty folder; expected the frames of one {edir.name} sequence')
      items += _sequence(frames, label, int(m.group(1)), root, cfg)
  return _nonempty(items, root, f'{cfg.oulu_subset}/P001/<Emotion>/*.jpeg frames')


# --------------------------------------------------------------------------------------------------- MMI
def _attr(el, name):
  for k, v in el.attrib.items():
    if k.lower() == name:
      return v
  return None


def _mmi_session(xml_files):
  """(emotion code or None, subject or None) from a session's XML files."""
  emotion = subject = None
  for x in xml_files:
    try:
      tree = ET.parse(x)
    except ET.ParseError as e:
      raise UserError(f'{x}: not readable XML ({e})') from None
    for el in tree.iter():
      name = (_attr(el, 'name') or '').strip().lower()
      value = _attr(el, 'value')
      if name == 'emotion' and value is not None:
        emotion = (value.strip(), x)
      elif name in ('subject', 'subjectid', 'subject id') and value is not None and value.strip().isdigit():
        subject = int(value)
      elif el.tag.lower() == 'subject' and (_attr(el, 'id') or '').strip().isdigit():
        subject = int(_attr(el, 'id'))
  return emotion, subject


def _video_frames(path):
  import cv2  # pylint: disable=import-outside-toplevel

  cap = cv2.VideoCapture(str(path))
  n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
  cap.release()
  if n <= 0:
    raise UserError(f'{path}: unreadable video (no frames)')
  return n


def read_mmi(root, cfg):
  sessions = root / 'Sessions' if (root / 'Sessions').is_dir() else None
  if sessions is None:
    subdirs = _subdirs(root)
    if subdirs and all(d.name.lower().replace(' ', '') in _WORDS for d in subdirs):
      return read_folder(root, cfg, subject_pattern=r'^S(\d+)')  # MMI exports: S001-...
    if subdirs and any(list(d.glob('*.xml')) for d in subdirs):
      sessions = root
    else:
      raise UserError(
        f'{root}: expected MMI Sessions/<id>/ folders (session XML + frames or video), or one folder per emotion'
      )
  items = []
  for sdir in _subdirs(sessions):
    xmls = [x for x in sorted(sdir.glob('*.xml')) if 'aucs' not in x.name.lower()]
    emotion, subject = _mmi_session(xmls)
    if emotion is None:
      continue  # an AU-only session
    value, where = emotion
    label = _label(_MMI, int(value) if value.isdigit() else value, where)
    videos = sorted(p for p in sdir.iterdir() if p.suffix.lower() in VIDEO_EXTS and _visible(p))
    if subject is None:
      m = re.match(r'^S(\d+)', (videos[0].name if videos else sdir.name))
      subject = int(m.group(1)) if m else NO_SUBJECT
    frames = _images(sdir)
    if frames:
      items += _sequence(frames, label, subject, root, cfg, middle=True)
    elif videos:
      n = _video_frames(videos[0])
      seq = _sequence([f'{_rel(videos[0], root)}#{i}' for i in range(n)], label, subject, root, cfg, middle=True)
      items += [dataclasses.replace(it, file=str(videos[0]), frame=int(it.key.rpartition('#')[2])) for it in seq]
    else:
      raise UserError(f'{sdir}: empty session folder; expected its frames or video next to {where.name}')
  return _nonempty(items, root, 'Sessions/<id>/ with a session XML holding <Metatag Name="Emotion" .../>')


# ------------------------------------------------------------------------------------------------- JAFFE
_JAFFE_NAME = re.compile(r'^([A-Za-z]{2})\.([A-Za-z]{2})(\d*)\.(\d+)$')


def read_jaffe(root, cfg):
  del cfg
  found = []
  for p in _images(root, recursive=True):
    if p.suffix.lower() not in ('.tiff', '.tif'):
      continue
    m = _JAFFE_NAME.match(p.stem)
    if not m:
      raise UserError(f'{p}: not a JAFFE file name; expected e.g. KA.AN1.39.tiff (subject.EXPRESSION#.id)')
    found.append((p, m.group(1).upper(), _label(_JAFFE, m.group(2).upper(), p)))
  ids = {s: i for i, s in enumerate(sorted({s for _, s, _ in found}))}
  items = [Item(key=_rel(p, root), label=lab, subject=ids[s], file=str(p)) for p, s, lab in found if lab is not None]
  return _nonempty(items, root, 'JAFFE files like KA.AN1.39.tiff')


# --------------------------------------------------------------------------------------------- AffectNet
def read_affectnet(root, cfg):
  del cfg
  lists = next(
    (
      d
      for d in (root / 'Manually_Annotated_file_lists', root)
      if (d / 'training.csv').is_file() or (d / 'validation.csv').is_file()
    ),
    None,
  )
  if lists is None:
    raise UserError(f'{root}: expected AffectNet Manually_Annotated_file_lists/training.csv and validation.csv')
  images = next(
    (
      d
      for d in (root / 'Manually_Annotated_Images', root / 'Manually_Annotated' / 'Manually_Annotated_Images')
      if d.is_dir()
    ),
    root,
  )
  items = []
  for name, split in (('training.csv', 'train'), ('validation.csv', 'test')):
    path = lists / name
    if not path.is_file():
      continue
    with _open_csv(path) as f:
      lines = _CsvLines(f, path)
      reader = csv.DictReader(lines)
      try:
        fields = [h.strip() for h in reader.fieldnames or []]
      except csv.Error as e:
        raise UserError(f'{path} line {lines.line}: malformed CSV ({e})') from None
      if 'subDirectory_filePath' not in fields or 'expression' not in fields:
        raise UserError(f'{path}: header lacks subDirectory_filePath/expression; got {",".join(fields)}')
      for row in _csv_rows(reader, lines):
        row = {k.strip(): (v or '').strip() for k, v in row.items() if k}
        where = f'{path} line {lines.line}'
        code = row['expression']
        label = _label(_AFFECTNET, int(code) if code.lstrip('-').isdigit() else code, where)
        if label is None:
          continue
        box = None
        try:
          box = tuple(int(float(row[k])) for k in ('face_x', 'face_y', 'face_width', 'face_height'))
        except (KeyError, ValueError):
          pass
        if box is not None and (box[2] <= 0 or box[3] <= 0):
          box = None
        items.append(
          Item(
            key=row['subDirectory_filePath'],
            label=label,
            file=str(images / row['subDirectory_filePath']),
            split=split,
            box=box,
          )
        )
  return _nonempty(items, root, 'rows subDirectory_filePath,...,expression in training.csv/validation.csv')


# ------------------------------------------------------------------------------------------------ folder
def read_folder(root, cfg, subject_pattern=r'^S(\d+)_'):
  del cfg
  subdirs = _subdirs(root)
  if subdirs and all(d.name.lower() in _SPLIT_DIRS for d in subdirs):
    groups = [(_SPLIT_DIRS[d.name.lower()], d) for d in subdirs]
  else:
    groups = [(None, root)]
  items = []
  for split, base in groups:
    for edir in _subdirs(base):
      label = _word_label(edir.name, f'{edir} (folder name)')
      if label is None:
        continue
      files = _images(edir, recursive=True)
      if not files:
        raise UserError(f'{edir}: empty folder; expected {edir.name} images')
      for p in files:
        subject = NO_SUBJECT
        if subject_pattern:
          m = re.match(subject_pattern, p.name)
          subject = int(m.group(1)) if m else NO_SUBJECT
        items.append(Item(key=_rel(p, root), label=label, subject=subject, file=str(p), split=split))
  return _nonempty(
    items,
    root,
    'one subfolder per emotion (anger, disgust, fear, happiness, sadness, surprise, neutral) holding images',
  )


READERS = {
  'fer2013': read_fer2013,
  'rafd': read_rafd,
  'ckplus': read_ckplus,
  'oulu_casia': read_oulu_casia,
  'mmi': read_mmi,
  'jaffe': read_jaffe,
  'affectnet': read_affectnet,
  'folder': read_folder,
}


MIN_SIDE = 16  # pixels: a smaller "face" is a thumbnail or a broken export, not a face to learn from


def load_grey(item):
  """The item's image as a 2-D uint8 greyscale array; UserError naming the file if it cannot be read or is
  smaller than MIN_SIDE on a side."""
  grey = _load_grey(item)
  if min(grey.shape[:2]) < MIN_SIDE:
    raise UserError(
      f'{item.file}: the image is {grey.shape[1]}x{grey.shape[0]} pixels; expected at least '
      f'{MIN_SIDE}x{MIN_SIDE} (a face)'
    )
  return grey


def _load_grey(item):
  if item.pixels is not None:
    return item.pixels
  if item.frame is not None:
    import cv2  # pylint: disable=import-outside-toplevel

    cap = cv2.VideoCapture(item.file)
    cap.set(cv2.CAP_PROP_POS_FRAMES, item.frame)
    ok, frame = cap.read()
    cap.release()
    if not ok:
      raise UserError(f'{item.file}: unreadable video frame {item.frame}')
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
  from PIL import Image  # pylint: disable=import-outside-toplevel

  if not os.path.isfile(item.file):
    raise UserError(f'{item.file}: image file does not exist')
  try:
    with Image.open(item.file) as im:
      im.load()
      if im.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        a = np.asarray(im, np.float64)
        return np.clip(a * (255.0 / max(a.max(), 1.0)), 0, 255).astype(np.uint8)
      return np.asarray(im.convert('L'), np.uint8)
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f'{item.file}: unreadable image ({type(e).__name__}: {e})') from None
