"""Procedural FACS faces: greyscale faces whose expression is a vector of action-unit intensities.

Identity (per subject), expression (per image) and nuisance (per image) parameters are drawn from
counter-based keys (seed, domain, subject, emotion, repeat), so an image does not depend on how many others
are drawn or in which batch. Everything runs in JAX, jit + vmap over a batch.

The photo's keys (intensity, per-AU jitter, background AU activity, pose, lighting, contrast, blur, noise)
are independent of which emotion's action units they switch on, so `render_as` can draw the same photo of
the same person with another expression: the ground truth a translation is scored against
(`fer_jax.eval.ground_truth`).

Every expression is a *local* deformation in face coordinates: brows move and furrow, lids open and close,
nostrils flare and the nose wrinkles, lip corners rise and fall, the jaw drops. Brightness, contrast,
lighting, pose and noise are drawn independently of the emotion, so no global cue gives the label away.

Face coordinates: x to the right, y down, the face ellipse about 0.75 wide and 1 high (half-axes); the
image spans [-VIEW, VIEW] in both axes before the pose transform.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.data import emotions
from fer_jax.infra import parallel

VIEW = 1.1

# name: (domain a range, domain b range). Domain b stands in for another dataset: other people (face
# shapes, skin and hair tones), harsher lighting, larger pose range, more noise and blur.
IDENTITY_RANGES = {
  'face_w': ((0.64, 0.80), (0.68, 0.86)),
  'face_h': ((0.92, 1.04), (0.88, 1.0)),
  'jaw': ((0.05, 0.40), (0.0, 0.30)),
  'skin': ((0.50, 0.82), (0.34, 0.66)),
  'hair_tone': ((0.04, 0.45), (0.25, 0.85)),
  'hair_len': ((-0.25, 0.95), (-0.35, 0.4)),
  'hair_volume': ((0.0, 1.0), (0.3, 1.4)),
  'hairline': ((0.60, 0.86), (0.62, 0.92)),
  'bg': ((0.15, 0.95), (0.1, 0.9)),
  'eye_x': ((0.29, 0.36), (0.27, 0.37)),
  'eye_y': ((-0.20, -0.10), (-0.22, -0.08)),
  'eye_w': ((0.13, 0.17), (0.12, 0.17)),
  'eye_h': ((0.055, 0.08), (0.05, 0.085)),
  'iris': ((0.045, 0.06), (0.04, 0.06)),
  'iris_tone': ((0.05, 0.45), (0.05, 0.3)),
  'brow_gap': ((0.15, 0.21), (0.14, 0.22)),
  'brow_len': ((0.15, 0.20), (0.14, 0.21)),
  'brow_thick': ((0.018, 0.035), (0.02, 0.04)),
  'brow_arch': ((0.0, 0.05), (0.0, 0.06)),
  'brow_tone': ((0.05, 0.35), (0.05, 0.3)),
  'nose_y': ((0.22, 0.32), (0.20, 0.34)),
  'nose_w': ((0.06, 0.10), (0.07, 0.11)),
  'mouth_y': ((0.50, 0.60), (0.48, 0.62)),
  'mouth_w': ((0.19, 0.25), (0.18, 0.26)),
  'lip_thick': ((0.025, 0.05), (0.025, 0.055)),
  'lip_tone': ((0.55, 0.85), (0.6, 0.9)),
  'fold_depth': ((0.0, 0.15), (0.05, 0.2)),
}
NUISANCE_RANGES = {
  'angle': ((-0.14, 0.14), (-0.25, 0.25)),  # radians
  'scale': ((0.92, 1.05), (0.84, 1.1)),
  'dx': ((-0.05, 0.05), (-0.09, 0.09)),
  'dy': ((-0.05, 0.05), (-0.09, 0.09)),
  'light_angle': ((-3.1416, 3.1416), (-3.1416, 3.1416)),
  'light': ((0.0, 0.25), (0.15, 0.45)),
  'contrast': ((0.8, 1.15), (0.65, 1.0)),
  'brightness': ((-0.08, 0.08), (-0.12, 0.12)),
  'noise': ((0.01, 0.035), (0.03, 0.07)),
  'blur': ((0.0, 0.6), (0.3, 1.0)),
}
DOMAINS = ('a', 'b')
IDENTITY_KEYS = tuple(IDENTITY_RANGES)
NUISANCE_KEYS = tuple(NUISANCE_RANGES)


def _domain_index(domain):
  if domain not in DOMAINS:
    raise ValueError(f'unknown rendering domain {domain!r}; expected one of {DOMAINS}')
  return DOMAINS.index(domain)


def _ranges(table, keys, domain):
  d = _domain_index(domain)
  lo = np.array([table[k][d][0] for k in keys], np.float32)
  hi = np.array([table[k][d][1] for k in keys], np.float32)
  return lo, hi


def _draw(seed, domain, subject, emotion, repeat, min_intensity, max_intensity, shown=None):
  """Parameters of one image from counter-based keys: (identity, AUs, intensity, nuisance, noise key).

  The identity depends on (seed, domain, subject) only. The emotion's prototype AUs are on at a random
  intensity with per-AU jitter; the other AUs get sparse low-level activity, as in real faces, so that no
  single AU being off identifies a class. `shown` (default: `emotion`) is the emotion whose prototype is
  switched on; every draw still comes from the keys of (subject, emotion, repeat), so the image of
  (subject, emotion, repeat) shown as another emotion is the same photo with that expression.
  """
  subject_key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _domain_index(domain)), subject)
  lo, hi = _ranges(IDENTITY_RANGES, IDENTITY_KEYS, domain)
  identity = jax.random.uniform(jax.random.fold_in(subject_key, 0), lo.shape, minval=lo, maxval=hi)
  image_key = jax.random.fold_in(jax.random.fold_in(subject_key, 1 + emotion), repeat)
  k_int, k_jit, k_bgm, k_bgv, k_nui, k_noise = jax.random.split(image_key, 6)
  proto = jnp.asarray(emotions.prototype_matrix())[emotion if shown is None else shown]
  intensity = jax.random.uniform(k_int, (), minval=min_intensity, maxval=max_intensity)
  jitter = jax.random.uniform(k_jit, proto.shape, minval=0.7, maxval=1.3)
  background = jax.random.uniform(k_bgv, proto.shape, maxval=0.25) * jax.random.bernoulli(k_bgm, 0.25, proto.shape)
  aus = jnp.clip(proto * intensity * jitter + (1.0 - proto) * background, 0.0, 1.0)
  lo, hi = _ranges(NUISANCE_RANGES, NUISANCE_KEYS, domain)
  nuisance = jax.random.uniform(k_nui, lo.shape, minval=lo, maxval=hi)
  return identity, aus, intensity, nuisance, k_noise


# ----------------------------------------------------------------------------------------- rendering
def _fill(d, soft):
  """Coverage of the region d < 0 with a one-pixel linear ramp (cheap anti-aliasing)."""
  return jnp.clip(0.5 - d / (2.0 * soft), 0.0, 1.0)


def _band(d, half_width, soft):
  return _fill(jnp.abs(d) - half_width, soft)


def _mix(img, tone, alpha):
  return img + alpha * (tone - img)


def _stripes(t, period):
  """0..1 stripes across t (wrinkle lines)."""
  return 0.5 + 0.5 * jnp.cos(2.0 * jnp.pi * t / period)


def _render_one(ident, aus, nuis, noise_key, size):
  """-> (image [size, size] in [0, 1], coverage of the face ellipse [size, size])."""
  p = dict(zip(IDENTITY_KEYS, ident))
  a = {au: aus[i] for au, i in emotions.AU_INDEX.items()}
  n = dict(zip(NUISANCE_KEYS, nuis))

  lin = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size * 2.0 - 1.0
  gx, gy = jnp.meshgrid(lin * VIEW, lin * VIEW)  # image coordinates
  # Inverse pose: image -> face coordinates.
  cx, cy = gx - n['dx'], gy - n['dy']
  ca, sa = jnp.cos(n['angle']), jnp.sin(n['angle'])
  x = (ca * cx + sa * cy) / n['scale']
  y = (-sa * cx + ca * cy) / n['scale']
  soft = 0.8 * (2 * VIEW / size) / n['scale']
  xa = jnp.abs(x)  # eyes, brows, nostrils and folds are mirror-symmetric

  skin, hair = p['skin'], p['hair_tone']
  img = p['bg'] + 0.1 * (gy / VIEW) * (p['bg'] - 0.5)

  # Hair mass behind the head, down to hair_len.
  hw, hh = p['face_w'] + 0.06 + 0.1 * p['hair_volume'], p['face_h'] * 0.92 + 0.08 * p['hair_volume']
  hair_d = (jnp.sqrt((x / hw) ** 2 + ((y + 0.12) / hh) ** 2) - 1.0) * hw
  img = _mix(img, hair, _fill(hair_d, soft) * _fill(y - p['hair_len'], soft))
  # Neck.
  img = _mix(img, skin * 0.8, _fill(xa - 0.3 * p['face_w'], soft) * _fill(0.55 - y, soft))

  # Face: the jaw narrows the lower half; a dropped jaw (AU26) lengthens it.
  lower = jnp.clip(y / p['face_h'], 0.0, 1.0)
  rx = p['face_w'] * (1.0 - p['jaw'] * lower**2)
  ry = jnp.where(y > 0, p['face_h'] + 0.1 * a[26], p['face_h'])
  r = jnp.sqrt((x / rx) ** 2 + (y / ry) ** 2)
  face = _fill((r - 1.0) * p['face_w'], soft)
  img = _mix(img, skin * (1.0 - 0.22 * r**2), face)
  # Fringe over the forehead.
  hairline = -p['face_h'] * p['hairline'] + 0.25 * x**2
  img = _mix(img, hair, face * _fill(y - hairline, soft))

  # ---- eyes: AU5 opens the upper lid, AU7 tightens both lids, AU6 pushes the lower lid up.
  ex, ey, ew, eh = p['eye_x'], p['eye_y'], p['eye_w'], p['eye_h']
  u = (xa - ex) / ew
  v = y - ey
  arc = jnp.sqrt(jnp.clip(1.0 - u**2, 0.0, 1.0))
  hu = eh * jnp.clip(1.0 + 0.9 * a[5] - 0.5 * a[7] - 0.3 * a[6], 0.12, 2.5)
  hl = eh * 0.6 * jnp.clip(1.0 + 0.3 * a[5] - 0.6 * a[6] - 0.4 * a[7], 0.1, 2.0)
  in_eye_span = _fill(jnp.abs(u) - 1.0, soft / ew)
  eye = in_eye_span * _fill(-hu * arc - v, soft) * _fill(v - hl * arc, soft)
  iris = _fill(jnp.sqrt((xa - ex) ** 2 + (y - ey) ** 2) - p['iris'], soft)
  sclera = jnp.minimum(skin + 0.3, 0.97)
  img = _mix(
    img,
    _mix(
      sclera,
      p['iris_tone'] * (1.0 - 0.6 * _fill(jnp.sqrt((xa - ex) ** 2 + (y - ey) ** 2) - 0.45 * p['iris'], soft)),
      iris,
    ),
    eye,
  )
  img = _mix(img, 0.08, 0.85 * _fill(jnp.abs(u) - 1.08, soft / ew) * _band(v + hu * arc, 0.012, soft))  # lash line
  img = _mix(img, skin * 0.6, 0.5 * in_eye_span * _band(v - hl * arc, 0.006, soft))  # lower lid
  crease = _band(v + hu * arc + 0.05 + 0.02 * a[5], 0.006, soft) * _fill(jnp.abs(u) - 0.9, soft / ew)
  img = _mix(img, skin * 0.65, 0.45 * crease * (1.0 - 0.7 * a[5]))
  # AU6: lifted cheeks (highlight under the eyes) and crow's feet at the outer corners.
  cheek = jnp.exp(-(((xa - ex) / 0.16) ** 2 + ((y - (ey + 0.24 - 0.06 * a[6])) / 0.08) ** 2))
  img = img + 0.16 * a[6] * cheek * face
  ox, oy = xa - (ex + ew + 0.025), y - ey
  rr = jnp.sqrt(ox**2 + oy**2)
  feet = _stripes(jnp.arctan2(oy, ox + 1e-6), 0.45) * _fill(rr - 0.09, soft) * (ox > 0)
  img = _mix(img, skin * 0.55, 0.5 * a[6] * feet * face)

  # ---- brows: AU1 raises the inner ends, AU2 the outer ends, AU4 lowers them and draws them together.
  bx = ex - 0.045 * a[4]
  s = (xa - bx) / p['brow_len']  # -1 inner end, +1 outer end
  raise_ = 0.14 * a[1] * (1.0 - s) / 2.0 + 0.12 * a[2] * (1.0 + s) / 2.0
  lowered = 0.09 * a[4] * (1.0 - 0.45 * s)
  by = ey - p['brow_gap'] - raise_ + lowered - p['brow_arch'] * (1.0 - s**2)
  thick = p['brow_thick'] * (1.0 - 0.3 * jnp.clip(s, 0.0, 1.0))
  brow = _band(y - by, thick, soft) * _fill(jnp.abs(s) - 1.0, soft / p['brow_len'])
  img = _mix(img, p['brow_tone'], brow)
  # Forehead lines (AU1, AU2) and the vertical furrows between the brows (AU4).
  top = ey - p['brow_gap'] - 0.1
  forehead = _fill(xa - 0.36, soft) * _fill(y - top, soft) * _fill(top - 0.2 - y, soft)
  img = _mix(img, skin * 0.55, 0.45 * (0.6 * a[1] + 0.4 * a[2]) * _stripes(y - top, 0.065) * forehead)
  glabella = _band(xa - 0.045, 0.008, soft) * _fill(y - (ey - 0.02), soft) * _fill(ey - p['brow_gap'] - y, soft)
  img = _mix(img, skin * 0.45, 0.8 * a[4] * glabella)

  # ---- nose: AU9 (and AU10) raise and flare the nostrils and wrinkle the bridge.
  nw = p['nose_w'] * (1.0 + 0.25 * a[9])
  ny = p['nose_y'] - 0.05 * a[9] - 0.02 * a[10]
  nostril = _fill((jnp.sqrt(((xa - nw * 0.6) / 0.04) ** 2 + ((y - ny) / 0.022) ** 2) - 1.0) * 0.022, soft)
  img = _mix(img, skin * 0.3, 0.9 * nostril)
  img = img - 0.12 * skin * jnp.exp(-((x / 0.08) ** 2 + ((y - ny - 0.04) / 0.03) ** 2))
  bridge = _band(xa - 0.055, 0.008, soft) * _fill(y - (ny - 0.05), soft) * _fill(ey + 0.04 - y, soft)
  img = _mix(img, skin * 0.7, 0.35 * bridge)
  wrinkle = _fill(xa - 0.08, soft) * _fill(y - (ey + 0.2), soft) * _fill(ey + 0.02 - y, soft)
  img = _mix(img, skin * 0.5, 0.7 * a[9] * _stripes(y - ey, 0.05) * wrinkle)

  # ---- mouth: AU12 pulls the corners up and out, AU15 pulls them down, AU20 stretches, AU23 tightens,
  # AU10 raises the upper lip, AU16 lowers the lower lip, AU26 drops the jaw.
  my = p['mouth_y'] + 0.05 * a[26]
  mw = p['mouth_w'] * (1.0 + 0.22 * a[12] + 0.3 * a[20] - 0.22 * a[23] - 0.08 * a[26])
  corner = -0.11 * a[12] + 0.075 * a[15] + 0.015 * a[20]
  open_top = 0.05 * a[10] + 0.02 * a[9] + 0.035 * a[12] + 0.1 * a[26]
  open_bot = 0.03 * a[12] + 0.06 * a[16] + 0.2 * a[26]
  ut = p['lip_thick'] * (1.0 - 0.6 * a[23]) * (1.0 - 0.3 * a[20])
  lt = p['lip_thick'] * 1.25 * (1.0 - 0.55 * a[23]) * (1.0 - 0.3 * a[20]) + 0.015 * a[16]
  t = x / mw
  t2 = jnp.clip(t**2, 0.0, 1.0)
  yui = my + corner * t2 - open_top * (1.0 - t2)
  yli = my + corner * t2 + open_bot * (1.0 - t2)
  yuo = yui - ut * (1.0 - 0.5 * t2)
  ylo = yli + lt * (1.0 - 0.6 * t2)
  span = _fill(jnp.abs(t) - 1.0, soft / mw)
  lips = span * _fill(yuo - y, soft) * _fill(y - ylo, soft)
  cavity = span * _fill(yui - y, soft) * _fill(y - yli, soft)
  teeth = cavity * _fill(y - (yui + 0.045), soft)
  img = _mix(img, skin * p['lip_tone'], lips)
  img = _mix(img, 0.07, cavity)
  img = _mix(img, 0.88, 0.9 * teeth)
  img = _mix(img, skin * 0.3, 0.8 * span * _band(y - 0.5 * (yui + yli), 0.007, soft))  # lip junction
  # Nasolabial folds from the nostril wings towards the (moving) mouth corners.
  f0x, f0y = nw * 0.6 + 0.06, ny
  f1x, f1y = mw + 0.03, my + corner + 0.06
  tf = (y - f0y) / (f1y - f0y)
  fx = f0x + (f1x - f0x) * tf + 0.04 * jnp.sin(jnp.pi * jnp.clip(tf, 0.0, 1.0))
  depth = p['fold_depth'] + 0.35 * a[9] + 0.3 * a[10] + 0.35 * a[12] + 0.1 * a[6]
  fold = _band(xa - fx, 0.01, soft) * _fill(-tf, 0.05) * _fill(tf - 1.0, 0.05)
  img = _mix(img, skin * 0.45, jnp.clip(depth, 0.0, 1.0) * fold * face)

  # ---- nuisance: lighting gradient, contrast, brightness, blur, sensor noise.
  light = 1.0 + n['light'] * (jnp.cos(n['light_angle']) * gx + jnp.sin(n['light_angle']) * gy) / VIEW
  img = (img * light - 0.5) * n['contrast'] + 0.5 + n['brightness']
  blurred = _blur3(img)
  img = img + n['blur'] * (blurred - img)
  img = img + n['noise'] * jax.random.normal(noise_key, img.shape)
  return jnp.clip(img, 0.0, 1.0), face


def _blur3(img):
  k = jnp.array([0.25, 0.5, 0.25])
  p = jnp.pad(img, 1, mode='edge')
  h = k[0] * p[:, :-2] + k[1] * p[:, 1:-1] + k[2] * p[:, 2:]
  return k[0] * h[:-2] + k[1] * h[1:-1] + k[2] * h[2:]


@functools.partial(jax.jit, static_argnames=('size', 'domain'))
def render_as(subject, emotion, repeat, shown, seed, min_intensity, max_intensity, *, size, domain):
  """The photos of [B] (subject, emotion, repeat) triples with the expressions of emotions `shown` [B].

  -> ([B, size, size, 1] uint8, AUs [B, NUM_AUS], intensity [B], face coverage [B, size, size] in [0, 1]).
  With shown = emotion these are the dataset's images.
  """

  def one(s, e, r, t):
    identity, aus, intensity, nuisance, noise_key = _draw(seed, domain, s, e, r, min_intensity, max_intensity, t)
    img, face = _render_one(identity, aus, nuisance, noise_key, size)
    return img, aus, intensity, face

  img, aus, intensity, face = jax.vmap(one)(subject, emotion, repeat, shown)
  return jnp.round(img * 255.0).astype(jnp.uint8)[..., None], aus, intensity, face


def render_specs(specs, size, seed, domain, min_intensity, max_intensity, batch_size=512, shown=None):
  """Renders `specs` = [(subject, emotion, repeat), ...] -> (images, {subject, label, aus, intensity, face}).

  `shown` [len(specs)] (default: each spec's emotion) renders each photo with that emotion's expression
  instead (`render_as`); `label` is then the shown emotion. `face` is the face ellipse's coverage.
  Batches are padded to `batch_size` so that `render_as` compiles once per image size and domain.
  """
  specs = np.asarray(specs, np.int32).reshape(-1, 3)
  shown = specs[:, 1].copy() if shown is None else np.asarray(shown, np.int32).reshape(-1)
  if len(shown) != len(specs):
    raise ValueError(f'shown has {len(shown)} emotions for {len(specs)} specs')
  if len(specs):
    images, aus, intensity, face = parallel.map_batches(
      lambda chunk, t: render_as(
        chunk[:, 0],
        chunk[:, 1],
        chunk[:, 2],
        t,
        np.uint32(seed),
        np.float32(min_intensity),
        np.float32(max_intensity),
        size=size,
        domain=domain,
      ),
      (specs, shown),
      batch_size,
    )
  else:
    images = np.zeros((0, size, size, 1), np.uint8)
    aus, intensity = np.zeros((0, emotions.NUM_AUS), np.float32), np.zeros((0,), np.float32)
    face = np.zeros((0, size, size), np.float32)
  meta = {'subject': specs[:, 0].copy(), 'label': shown, 'aus': aus, 'intensity': intensity, 'face': face}
  return images, meta
