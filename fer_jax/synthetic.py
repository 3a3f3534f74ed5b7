"""Synthetic training sets: identity GAN faces given each of the 6 Ekman emotions by the expression GAN.

Identity i is drawn from (seed, i) alone and gets all 6 emotions, in label order, so the set is balanced and
nested: the first n images of a larger set are exactly the n-image set (the sweep then measures quantity,
not the luck of a draw). A set is a TFDS dataset (ArrayRecord, order preserved) whose metadata records its
provenance: the generator checkpoints and steps, the seed and the truncation psi.

As a data source it is `synthetic:DIR`, DIR being the dataset's folder (what `generate` returns); the reader is
`fer_jax.data.synthetic_source`, which needs neither GAN.

Curated sets (`synthetic.filter = 'judge'`): every generated face is scored by the pool judge (the GAN
pool's instrument, `fer_jax.eval.instruments`, trained on real pool faces only) and kept when the judge's
class is its label with probability at least `synthetic.min_confidence`. Kept faces fill the set row by row,
row r holding the r-th kept face of each emotion in label order, so the set stays balanced and nested (a
larger set goes on generating where a smaller one stopped); the set's metadata (`filter_stats`) records how
many faces were generated per kept one.
"""

import collections
import dataclasses
import hashlib
import json
import math
import os

import jax
import numpy as np
import tensorflow_datasets as tfds
from tqdm.auto import tqdm

from fer_jax.data import emotions, faces, sources, synthetic_source
from fer_jax.data import pool as pool_lib
from fer_jax.eval import instruments
from fer_jax.infra.errors import UserError
from fer_jax.train import generators

FILTERS = ('none', 'judge')
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


class SyntheticFaces(tfds.core.GeneratorBasedBuilder):
  """Faces made by the two GANs, labelled by the emotion the expression GAN imposed."""

  VERSION = tfds.core.Version('1.0.0')

  def __init__(self, *, generators=None, config_dict=None, **kwargs):
    # `generators` = (identity generator, expression G params, judge or None, GAN pool or None); only needed
    # to build, not to read. The pool is where an AU-conditioned expression GAN's targets come from.
    self._generators = generators
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
    id_gen, g_params, _, pool = self._generators
    batch = int(self._config_dict.synthetic.batch_size)
    key = jax.random.key(c.seed)
    labels = np.arange(emotions.NUM_EKMAN, dtype=np.int32)
    bar = tqdm(total=c.num_identities * emotions.NUM_EKMAN, desc='synthetic faces', unit='img', leave=False)
    index = 0
    # Identity i depends on (key, i) only: the first identities of a larger set are this set's.
    all_faces = generators.sample_identities(id_gen, key, c.num_identities, c.psi, batch_size=batch)
    for start in range(0, c.num_identities, batch):
      faces = all_faces[start : start + batch]
      n = len(faces)
      ids = np.arange(start, start + n)
      per_emotion = [self._translate(g_params, pool, faces, e, ids) for e in labels]
      for i in range(n):
        for e in labels:
          yield index, {'image': per_emotion[e][i], 'label': int(e), 'subject': np.int32(start + i)}
          index += 1
      bar.update(n * len(labels))
    bar.close()

  def _translate(self, g_params, pool, faces, emotion, ids):
    """`faces` given `emotion`; identity i's targets are drawn from (synthetic.seed, emotion, i)."""
    c = self._config_dict
    told = generators.conditions(c, pool, np.full((len(faces),), emotion, np.int32), ids, self.builder_config.seed)
    return generators.translate_all(c, g_params, faces, told)[0]

  def _judged_examples(self):
    """Faces the pool judge reads as their label (module docstring): row r = the r-th kept face per emotion."""
    c = self.builder_config
    id_gen, g_params, judge, pool = self._generators
    batch = int(self._config_dict.synthetic.batch_size)
    key = jax.random.key(c.seed)
    kept = [collections.deque() for _ in range(emotions.NUM_EKMAN)]  # per emotion: (image, identity) not yet written
    generated, accepted, rows, start = 0, np.zeros(emotions.NUM_EKMAN, int), 0, 0
    bar = tqdm(total=c.num_identities * emotions.NUM_EKMAN, desc='curated synthetic faces', unit='img', leave=False)
    while rows < c.num_identities:
      faces = generators.sample_identities(id_gen, key, batch, c.psi, batch_size=batch, start=start)
      for e in range(emotions.NUM_EKMAN):
        images = self._translate(g_params, pool, faces, e, np.arange(start, start + batch))
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
          f'{100 * MIN_KEPT_SHARE:g}%); lower synthetic.min_confidence or train the expression GAN longer'
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
  p = config.data.procedural
  fields = dict(
    image_size=int(config.data.image_size),
    num_identities=math.ceil(n_images / emotions.NUM_EKMAN),
    seed=int(p.seed),
    domain=oracle_domain(config),
    min_intensity=float(p.min_intensity),
    max_intensity=float(p.max_intensity),
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
  if (
    isinstance(s.min_confidence, bool)
    or not isinstance(s.min_confidence, (int, float))
    or not 0 <= s.min_confidence < 1
  ):
    raise UserError(f'synthetic.min_confidence={s.min_confidence!r}; expected a probability in [0, 1)')


def generate(config, workdir, *, n_images, identity_gan_dir, expression_gan_dir):
  """Builds (or finds) the synthetic set of >= n_images faces; returns its folder for `synthetic:DIR`."""

  check_config(config)
  if n_images <= 0:
    raise UserError(f'a synthetic set needs a positive number of images, got {n_images}')
  id_gen = generators.load_identity(identity_gan_dir, config)
  g_params = generators.load_expression(expression_gan_dir, config)
  provenance = {
    'identity_gan': {'workdir': os.path.abspath(identity_gan_dir), 'step': int(id_gen.step)},
    'expression_gan': {
      'workdir': os.path.abspath(expression_gan_dir),
      'step': _latest_step(os.path.join(expression_gan_dir, 'checkpoints')),
    },
  }
  num_identities = math.ceil(n_images / emotions.NUM_EKMAN)
  fields = dict(
    image_size=int(config.data.image_size),
    num_identities=num_identities,
    seed=int(config.synthetic.seed),
    psi=float(config.synthetic.psi),
    provenance=json.dumps(provenance, sort_keys=True),
  )
  pool = pool_lib.load_pool(config, workdir) if config.expression_gan.condition == 'aus' else None
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
    generators=(id_gen, g_params, judge, pool),
    config_dict=config,
  )
  return sources.prepare(b).data_dir


def _latest_step(directory):
  steps = [int(d) for d in os.listdir(directory) if d.isdigit()] if os.path.isdir(directory) else []
  return max(steps, default=-1)
