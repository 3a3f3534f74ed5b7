"""Synthetic training sets: identity GAN faces given each of the 6 Ekman emotions by the expression GAN.

Identity i is drawn from (seed, i) alone and gets all 6 emotions, in label order, so the set is balanced and
nested: the first n images of a larger set are exactly the n-image set (the sweep then measures quantity,
not the luck of a draw). A set is a TFDS dataset (ArrayRecord, order preserved) whose metadata records its
provenance: the generator checkpoints and steps, the seed and the truncation psi.

The one-stage option (`identities='one_stage'`, the sweep's `one_stage` generator) has no expression GAN: a
class-conditional identity GAN draws identity i (one latent) in each emotion directly, in the same layout.

As a data source it is `synthetic:DIR`, DIR being the dataset's folder (what `generate` returns); the reader is
`fer_jax.data.synthetic_source`, which needs neither GAN.

Curated sets (`synthetic.filter = 'judge'`): every generated face is scored by the pool judge (the GAN
pool's instrument, `fer_jax.eval.instruments`, trained on real pool faces only) and kept when the judge's
class is its label with probability at least `synthetic.min_confidence`. Kept faces fill the set row by row,
row r holding the r-th kept face of each emotion in label order, so the set stays balanced and nested (a
larger set goes on generating where a smaller one stopped); the set's metadata (`filter_stats`) records how
many faces were generated per kept one.

Sensor noise (`synthetic.sensor_noise = 'pool'`): every face of the set is given a noise level drawn from the GAN
pool's training faces' levels (`fer_jax.infra.sensor_noise`), face (i, emotion) from (seed, i, emotion) alone, so
the set stays nested; its metadata records the reference levels' quantiles.
"""

import collections
import dataclasses
import hashlib
import json
import math
import os
from typing import Any, NamedTuple

import jax
import numpy as np
import tensorflow_datasets as tfds
from tqdm.auto import tqdm

from fer_jax.data import emotions, faces, sources, synthetic_source
from fer_jax.data import pool as pool_lib
from fer_jax.eval import instruments
from fer_jax.infra import sensor_noise
from fer_jax.infra.errors import UserError
from fer_jax.train import generators

FILTERS = ('none', 'judge')
SENSOR_NOISE = ('none', 'pool')
SCALED = {'au_scale': 'the action units as drawn', 'oracle_intensity': "the data's own intensities"}
# A class the judge keeps less often than this (kept / generated) stops a curated set: the filter would have
# to generate hundreds of faces per kept one. Lower synthetic.min_confidence, or fix the expression GAN.
MIN_KEPT_SHARE = 0.02


@dataclasses.dataclass(eq=False)
class SyntheticFacesConfig(tfds.core.BuilderConfig):
  image_size: int = 32
  num_identities: int = 0
  seed: int = 0
  psi: float = 1.0
  provenance: str = '{}'  # JSON: generator workdirs, checkpoint steps
  filter: str = 'none'
  min_confidence: float = 0.0
  # or 'real': neutral faces of real (or rendered) people, not the identity GAN's; or 'one_stage': a conditional
  # identity GAN's faces of each emotion, no expression GAN
  identities: str = 'gan'
  sensor_noise: str = 'none'
  au_scale: float = 1.0


class Makers(NamedTuple):
  """What builds a synthetic set (not needed to read one)."""

  # (start, n) -> uint8 faces of identities start .. start + n - 1 (the identity GAN's draws, or real neutral
  # faces); a one-stage generator's takes the emotion too: (start, n, emotion)
  draw: Any
  g_params: Any  # the expression generator's (None for one stage)
  judge: Any  # the pool judge of a curated set, else None
  pool: Any  # the GAN pool: where an AU-conditioned expression GAN's targets come from; else None
  noise_levels: Any  # the reference sensor-noise levels (synthetic.sensor_noise = 'pool'), else None


class SyntheticFaces(tfds.core.GeneratorBasedBuilder):
  """Faces made by the two GANs, labelled by the emotion the expression GAN imposed."""

  VERSION = tfds.core.Version('1.0.0')

  def __init__(self, *, generators=None, config_dict=None, **kwargs):
    self._generators = generators  # `Makers`; only needed to build, not to read
    self._config_dict = config_dict
    super().__init__(**kwargs)

  def _info(self):
    c = self.builder_config
    return tfds.core.DatasetInfo(
      builder=self,
      description='Synthetic faces: identity GAN samples x the 6 Ekman emotions (expression GAN).',
      features=synthetic_source.features(c.image_size),
      disable_shuffling=True,  # keeps identity-major order: prefixes are balanced and nested
      metadata=tfds.core.MetadataDict(
        provenance=json.loads(c.provenance),
        seed=c.seed,
        psi=c.psi,
        num_identities=c.num_identities,
        filter=c.filter,
        min_confidence=c.min_confidence,
        identities=c.identities,
        sensor_noise=c.sensor_noise,
        au_scale=c.au_scale,
      ),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    if self.builder_config.filter == 'judge':
      yield from self._judged_examples()
      return
    c = self.builder_config
    batch = int(self._config_dict.synthetic.batch_size)
    labels = np.arange(emotions.NUM_EKMAN, dtype=np.int32)
    bar = tqdm(total=c.num_identities * emotions.NUM_EKMAN, desc='synthetic faces', unit='img', leave=False)
    index = 0
    # Identity i depends on (key, i) only: the first identities of a larger set are this set's. All drawn at once
    # (rendering real identities has a fixed cost per call).
    everyone = None if c.identities == 'one_stage' else self._generators.draw(0, c.num_identities)
    for start in range(0, c.num_identities, batch):
      n = min(batch, c.num_identities - start)
      per_emotion = self._faces(start, n, None if everyone is None else everyone[start : start + n])
      for i in range(n):
        for e in labels:
          yield index, {'image': per_emotion[e][i], 'label': int(e), 'subject': np.int32(start + i)}
          index += 1
      bar.update(n * len(labels))
    bar.close()

  def _faces(self, start, n, faces=None):
    """[6 x uint8 faces of identities start .. start + n - 1]: the identities (`faces`, or drawn) given each Ekman
    emotion by the expression GAN (identity i's targets drawn from (synthetic.seed, emotion, i), times
    synthetic.au_scale), or drawn in it directly by a one-stage (conditional) generator; with reference noise levels,
    through the sensor model."""
    m, seed, ids = self._generators, self.builder_config.seed, np.arange(start, start + n)
    if self.builder_config.identities == 'one_stage':
      out = [m.draw(start, n, e) for e in range(emotions.NUM_EKMAN)]
    else:
      faces = m.draw(start, n) if faces is None else faces
      told = [
        generators.conditions(self._config_dict, m.pool, np.full((n,), e, np.int32), ids, seed)
        for e in range(emotions.NUM_EKMAN)
      ]
      if self.builder_config.au_scale != 1.0:  # (action units: checked by `check_config`)
        told = [np.float32(self.builder_config.au_scale) * t for t in told]
      out = [generators.translate_all(self._config_dict, m.g_params, faces, t)[0] for t in told]
    if m.noise_levels is None:
      return out
    return [sensor_noise.add_matched_noise(x, m.noise_levels, seed, ids, e) for e, x in enumerate(out)]

  def _judged_examples(self):
    """Faces the pool judge reads as their label (module docstring): row r = the r-th kept face per emotion."""
    c = self.builder_config
    judge = self._generators.judge
    batch = int(self._config_dict.synthetic.batch_size)
    kept = [collections.deque() for _ in range(emotions.NUM_EKMAN)]  # per emotion: (image, identity) not yet written
    generated, accepted, rows, start = 0, np.zeros(emotions.NUM_EKMAN, int), 0, 0
    bar = tqdm(total=c.num_identities * emotions.NUM_EKMAN, desc='curated synthetic faces', unit='img', leave=False)
    while rows < c.num_identities:
      for e, images in enumerate(self._faces(start, batch)):
        p = np.asarray(jax.nn.softmax(judge.logits(images), axis=1))
        ok = (p.argmax(1) == e) & (p[:, e] >= c.min_confidence)
        kept[e].extend((images[i], start + i) for i in np.nonzero(ok)[0])
        accepted[e] += int(ok.sum())
      generated += batch
      start += batch
      while rows < c.num_identities and all(kept):
        for e in range(emotions.NUM_EKMAN):
          image, identity = kept[e].popleft()
          yield rows * emotions.NUM_EKMAN + e, {'image': image, 'label': e, 'subject': np.int32(identity)}
        rows += 1
        bar.update(emotions.NUM_EKMAN)
      worst = int(accepted.argmin())
      if generated >= 4 * batch and accepted[worst] < MIN_KEPT_SHARE * generated:
        raise UserError(
          f'synthetic.filter=judge: the judge kept {accepted[worst]} of {generated} generated '
          f'{emotions.EKMAN[worst]} faces at synthetic.min_confidence={c.min_confidence:g} (below '
          f'{100 * MIN_KEPT_SHARE:g}%); lower synthetic.min_confidence or train the GANs longer'
        )
    bar.close()
    # Written with the dataset's info once every example is: a set and its record are made together.
    self.info.metadata['filter_stats'] = {
      'filter': 'judge',
      'min_confidence': c.min_confidence,
      'generated_per_emotion': generated,
      'kept_per_emotion': {emotions.EKMAN[e]: int(accepted[e]) for e in range(emotions.NUM_EKMAN)},
      'used_per_emotion': rows,
      'generated_per_kept': generated / rows,
    }


# --------------------------------------------------------------------------------------------- oracle
# Subject ids of oracle faces start here: above every split's ids (splits number their subjects from 0), so
# the oracle's people are new whatever the split sizes, and the same id is the same person in every set.
ORACLE_FIRST_SUBJECT = 1_000_000


@dataclasses.dataclass(eq=False)
class OracleFacesConfig(tfds.core.BuilderConfig):
  image_size: int = 32
  num_identities: int = 0
  seed: int = 0  # the renderer's seed (data.procedural.seed): the same identity distribution as the data
  domain: str = 'a'
  min_intensity: float = 0.25
  max_intensity: float = 1.0


class OracleFaces(tfds.core.GeneratorBasedBuilder):
  """A perfect generator: new procedural subjects rendered with exact labels, in the GAN set's layout.

  Identity i gets the 6 Ekman emotions in label order (balanced and nested like the GAN set), each at an
  intensity drawn as the data's are, so a classifier run reads it through `synthetic:DIR` like any set.
  """

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    c = self.builder_config
    return tfds.core.DatasetInfo(
      builder=self,
      description='Oracle synthetic faces: new procedural subjects x the 6 Ekman emotions, exact labels.',
      features=synthetic_source.features(c.image_size),
      disable_shuffling=True,
      metadata=tfds.core.MetadataDict(
        generator='oracle',
        seed=c.seed,
        domain=c.domain,
        num_identities=c.num_identities,
        first_subject=ORACLE_FIRST_SUBJECT,
      ),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    c = self.builder_config
    specs = [(ORACLE_FIRST_SUBJECT + i, e, 0) for i in range(c.num_identities) for e in range(emotions.NUM_EKMAN)]
    images, meta = faces.render_specs(specs, c.image_size, c.seed, c.domain, c.min_intensity, c.max_intensity)
    for i in range(len(specs)):
      yield i, {'image': images[i], 'label': int(meta['label'][i]), 'subject': np.int32(meta['subject'][i])}


def oracle_domain(config):
  """The rendering domain of the GAN pool; a clear error unless every training and pool source is procedural."""
  srcs = sources.parse_sources(config.data.train_sources, 'data.train_sources') + sources.parse_sources(
    config.data.pool_sources, 'data.pool_sources'
  )
  other = [s for s in srcs if s.kind != 'procedural']
  if other:
    raise UserError(
      f"synthetic generator 'oracle' renders new procedural faces, so it needs procedural training "
      f"and pool sources; got {other[0]} (use generator 'gan' with real datasets)"
    )
  return sources.parse_sources(config.data.pool_sources, 'data.pool_sources')[0].arg


def generate_oracle(config, workdir, *, n_images):
  """Builds (or finds) the oracle set of >= n_images faces in WORKDIR/synthetic; returns its folder."""
  if n_images <= 0:
    raise UserError(f'a synthetic set needs a positive number of images, got {n_images}')
  check_config(config)
  p, scale = config.data.procedural, float(config.synthetic.oracle_intensity)
  fields = dict(
    image_size=int(config.data.image_size),
    num_identities=math.ceil(n_images / emotions.NUM_EKMAN),
    seed=int(p.seed),
    domain=oracle_domain(config),
    # Scaled, each face's intensity is the same draw times `scale`: the same photos with weaker expressions.
    min_intensity=float(p.min_intensity) * scale,
    max_intensity=float(p.max_intensity) * scale,
  )
  digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
  cfg = OracleFacesConfig(name=f'{fields["num_identities"]}ids_{digest}', **fields)
  b = OracleFaces(config=cfg, data_dir=os.path.join(workdir, 'synthetic'), file_format='array_record')
  return sources.prepare(b).data_dir


def images_needed(n_real, multiples):
  return max([int(round(float(k) * n_real)) for k in multiples] + [0])


def check_config(config):
  s = config.synthetic
  if s.filter not in FILTERS:
    raise UserError(f'synthetic.filter={s.filter!r}; expected one of {", ".join(FILTERS)}')
  if s.sensor_noise not in SENSOR_NOISE:
    raise UserError(
      f'synthetic.sensor_noise={s.sensor_noise!r}; expected one of {", ".join(SENSOR_NOISE)} '
      "(pool: each face given a noise level of the GAN pool's training faces)"
    )
  if (
    isinstance(s.min_confidence, bool)
    or not isinstance(s.min_confidence, (int, float))
    or not 0 <= s.min_confidence < 1
  ):
    raise UserError(f'synthetic.min_confidence={s.min_confidence!r}; expected a probability in [0, 1)')
  for name in ('au_scale', 'oracle_intensity'):
    value = s[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
      raise UserError(f'synthetic.{name}={value!r}; expected a number > 0 (1: {SCALED[name]})')
  scale = s.au_scale
  if scale != 1 and config.expression_gan.condition != 'aus':
    raise UserError(
      f'synthetic.au_scale={scale!r} scales the action units the expression GAN is told; '
      f'expression_gan.condition={config.expression_gan.condition!r} tells it an emotion (use aus, or au_scale 1)'
    )


def generate(config, workdir, *, n_images, expression_gan_dir=None, identity_gan_dir=None, identities='gan'):
  """Builds (or finds) the synthetic set of >= n_images faces; returns its folder for `synthetic:DIR`.

  identities='gan': the identity GAN's faces (the study); 'real': faces of people never generated, in
  neutral expression (`real_identities`), so that the set measures the expression GAN alone; 'one_stage': no
  expression GAN, `identity_gan_dir` holds a conditional identity GAN (identity_gan.num_classes > 0) that draws
  identity i in each emotion directly (the same latent for all six)."""

  check_config(config)
  if n_images <= 0:
    raise UserError(f'a synthetic set needs a positive number of images, got {n_images}')
  if identities not in ('gan', 'real', 'one_stage'):
    raise ValueError(f'identities={identities!r}; expected gan, real or one_stage')
  num_identities = math.ceil(n_images / emotions.NUM_EKMAN)
  one_stage = identities == 'one_stage'
  g_params, provenance = None, {}
  if not one_stage:
    g_params = generators.load_expression(expression_gan_dir, config)
    provenance['expression_gan'] = {
      'workdir': os.path.abspath(expression_gan_dir),
      'step': _latest_step(os.path.join(expression_gan_dir, 'checkpoints')),
    }
  rendered = identities == 'real' and _all_procedural(config)
  matched = config.synthetic.sensor_noise == 'pool'
  needs_pool = (
    (not one_stage and config.expression_gan.condition == 'aus') or (identities == 'real' and not rendered) or matched
  )
  pool = pool_lib.load_pool(config, workdir) if needs_pool else None
  fields = dict(image_size=int(config.data.image_size), num_identities=num_identities, seed=int(config.synthetic.seed))
  if identities in ('gan', 'one_stage'):
    id_gen = generators.load_identity(identity_gan_dir, config)
    if one_stage != bool(id_gen.module.num_classes):
      raise UserError(
        f'identity_gan.num_classes={id_gen.module.num_classes}: a set of identities={identities!r} needs '
        + ('a conditional identity GAN (num_classes 7)' if one_stage else 'an unconditional one (num_classes 0)')
      )
    provenance['identity_gan'] = {'workdir': os.path.abspath(identity_gan_dir), 'step': int(id_gen.step)}
    key, psi, batch = (
      jax.random.key(int(config.synthetic.seed)),
      float(config.synthetic.psi),
      int(config.synthetic.batch_size),
    )
    fields['psi'] = psi
    if one_stage:
      fields['identities'] = 'one_stage'
      draw = lambda start, n, e: generators.sample_identities(
        id_gen, key, n, psi, batch_size=batch, start=start, labels=e
      )
    else:
      draw = lambda start, n: generators.sample_identities(id_gen, key, n, psi, batch_size=batch, start=start)
  elif identities == 'real':
    draw, provenance['identities'] = _real_identities(config, pool, rendered, num_identities)
    fields['identities'] = 'real'  # (a GAN set's fields, and so its folder's name, are those of before this option)
  levels = None
  if matched:
    levels = sensor_noise.noise_levels(pool.images[pool.train_idx])
    # Only sets with the sensor model name it: the folders of sets made before it existed stay valid.
    fields['sensor_noise'] = 'pool'
    provenance['sensor_noise'] = {
      'reference': "the GAN pool's training faces",
      'count': int(len(levels)),
      'levels_p10_p50_p90': [round(float(v), 5) for v in np.percentile(levels, [10, 50, 90])],
    }
  if float(config.synthetic.au_scale) != 1.0 and not one_stage:
    fields['au_scale'] = float(config.synthetic.au_scale)  # named only when used: older folders stay valid
  fields['provenance'] = json.dumps(provenance, sort_keys=True)
  judge = None
  if config.synthetic.filter == 'judge':
    judge = instruments.expression(config, workdir, pool)
    # Only curated sets name their filter: the folders of unfiltered sets made before it existed stay valid.
    provenance['judge'] = {'fingerprint': judge.fingerprint}
    fields.update(
      provenance=json.dumps(provenance, sort_keys=True),
      filter='judge',
      min_confidence=float(config.synthetic.min_confidence),
    )
  digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
  cfg = SyntheticFacesConfig(name=f'{num_identities}ids_{digest}', **fields)
  data_dir = os.path.join(workdir, 'synthetic')
  b = SyntheticFaces(
    config=cfg,
    data_dir=data_dir,
    file_format='array_record',
    generators=Makers(draw, g_params, judge, pool, levels),
    config_dict=config,
  )
  return sources.prepare(b).data_dir


def _all_procedural(config):
  srcs = sources.parse_sources(config.data.train_sources, 'data.train_sources') + sources.parse_sources(
    config.data.pool_sources, 'data.pool_sources'
  )
  return all(s.kind == 'procedural' for s in srcs)


def _real_identities(config, pool, rendered, num_identities=0):
  """(draw(start, n) -> uint8 neutral faces, provenance) of people no GAN drew: on procedural data new rendered
  subjects, the oracle's people (ids from ORACLE_FIRST_SUBJECT: the same person in both sets); on real data the
  GAN pool's own neutral faces, training subjects first, in record order."""
  if rendered:
    p = config.data.procedural
    args = (
      int(config.data.image_size),
      int(p.seed),
      oracle_domain(config),
      float(p.min_intensity),
      float(p.max_intensity),
    )

    def draw(start, n):
      specs = [(ORACLE_FIRST_SUBJECT + i, emotions.NEUTRAL, 0) for i in range(start, start + n)]
      return faces.render_specs(specs, *args)[0]

    return draw, {'kind': 'rendered neutral subjects', 'first_subject': ORACLE_FIRST_SUBJECT, 'domain': args[2]}
  order = np.concatenate([pool.train_idx, pool.holdout_idx])
  neutral = order[pool.labels[order] == emotions.NEUTRAL]

  def draw(start, n):  # (checked again here: a curated set draws past num_identities)
    if start + n > len(neutral):
      raise UserError(
        f'synthetic identities=real: the set needs {start + n} neutral faces and the GAN pool '
        f"(data.pool_sources={config.data.pool_sources!r}) has {len(neutral)}; lower the sweep's largest multiple"
      )
    return pool.images[neutral[start : start + n]]

  draw(0, num_identities)  # too few neutral faces: said before the set's builder writes anything

  return draw, {'kind': "the GAN pool's neutral faces", 'count': int(len(neutral))}


# ------------------------------------------------------------------------------------------- the pool set
@dataclasses.dataclass(eq=False)
class PoolFacesConfig(tfds.core.BuilderConfig):
  image_size: int = 32
  num_rows: int = 0
  seed: int = 0
  pool_sources: str = ''


class PoolFaces(tfds.core.GeneratorBasedBuilder):
  """The GAN pool's own training faces of the 6 Ekman emotions with their labels, in the GAN set's layout: row r
  holds the r-th face of each emotion in label order (each emotion's faces in a permutation drawn from the seed),
  so the set is balanced and nested. What both GANs learned from: is generating better than adding it?"""

  VERSION = tfds.core.Version('1.0.0')

  def __init__(self, *, pool=None, **kwargs):
    self._pool = pool  # only needed to build
    super().__init__(**kwargs)

  def _info(self):
    c = self.builder_config
    return tfds.core.DatasetInfo(
      builder=self,
      description="The GAN pool's training faces (6 Ekman emotions), balanced and nested.",
      features=synthetic_source.features(c.image_size),
      disable_shuffling=True,
      metadata=tfds.core.MetadataDict(generator='pool', seed=c.seed, num_rows=c.num_rows, pool_sources=c.pool_sources),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    c = self.builder_config
    rows = pool_rows(self._pool, c.seed)[: c.num_rows]
    for r, row in enumerate(rows):
      for e, j in enumerate(row):
        image, subject = self._pool.images[j], self._pool.subjects[j]
        yield r * emotions.NUM_EKMAN + e, {'image': image, 'label': e, 'subject': np.int32(subject)}


def pool_rows(pool, seed):
  """[rows, 6] record indices: row r = the r-th training face of each Ekman emotion (per emotion in a permutation
  drawn from `seed`); as many rows as the rarest emotion has faces."""
  labels = pool.labels[pool.train_idx]
  per = [pool.train_idx[labels == e] for e in range(emotions.NUM_EKMAN)]
  per = [np.random.default_rng([int(seed), e]).permutation(idx) for e, idx in enumerate(per)]
  n = min(len(idx) for idx in per)
  return np.stack([idx[:n] for idx in per], axis=1)


def generate_pool(config, workdir, *, n_images, n_real):
  """Builds (or finds) the pool set of >= n_images faces (the largest multiple of `n_real` real images) in
  WORKDIR/synthetic; returns its folder."""
  if n_images <= 0:
    raise UserError(f'a synthetic set needs a positive number of images, got {n_images}')
  pool = pool_lib.load_pool(config, workdir)
  num_rows = math.ceil(n_images / emotions.NUM_EKMAN)
  have = len(pool_rows(pool, config.synthetic.seed))
  if num_rows > have:
    largest = math.floor(100 * have * emotions.NUM_EKMAN / n_real) / 100
    raise UserError(
      f"sweep.generators 'pool': k = {n_images / n_real:g} needs {n_images} faces ({n_images / n_real:g} x "
      f'{n_real} real) and the GAN pool has {have * emotions.NUM_EKMAN} training faces of the Ekman emotions in '
      f'balanced rows ({have} per emotion); the largest k it allows is {largest:g}'
    )
  fields = dict(
    image_size=int(config.data.image_size),
    num_rows=num_rows,
    seed=int(config.synthetic.seed),
    pool_sources=str(config.data.pool_sources),
  )
  digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
  cfg = PoolFacesConfig(name=f'{num_rows}rows_{digest}', **fields)
  b = PoolFaces(config=cfg, data_dir=os.path.join(workdir, 'synthetic'), file_format='array_record', pool=pool)
  return sources.prepare(b).data_dir


def _latest_step(directory):
  steps = [int(d) for d in os.listdir(directory) if d.isdigit()] if os.path.isdir(directory) else []
  return max(steps, default=-1)
