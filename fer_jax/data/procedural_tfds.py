"""TFDS builder for the embedded procedural-faces dataset (ArrayRecord, no TensorFlow needed).

One builder config per (domain, rendering settings); its name carries a hash of the settings, so a changed
preset never reads a stale dataset. Splits `train`, `validation`, `test` hold the 6 Ekman emotions of
disjoint subjects; `pool` holds other subjects with all 7 classes (neutral too): what the GANs learn from.
"""

import dataclasses
import hashlib
import json

import numpy as np
import tensorflow_datasets as tfds

from fer_jax.data import emotions, faces

SPLITS = ('train', 'validation', 'test', 'pool')


@dataclasses.dataclass(eq=False)
class ProceduralFacesConfig(tfds.core.BuilderConfig):
  domain: str = 'a'
  image_size: int = 64
  seed: int = 1234
  train_subjects: int = 50
  validation_subjects: int = 20
  test_subjects: int = 40
  pool_subjects: int = 300
  images_per_emotion: int = 2
  pool_images_per_emotion: int = 2
  min_intensity: float = 0.25
  max_intensity: float = 1.0

  @classmethod
  def from_config(cls, domain, image_size, procedural):
    """Builds the config from `config.data.procedural` (a ConfigDict) and the image size."""
    fields = dict(
      domain=domain,
      image_size=int(image_size),
      **{
        f.name: getattr(procedural, f.name)
        for f in dataclasses.fields(cls)
        if f.name not in ('domain', 'image_size') and f.name in procedural
      },
    )
    digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
    return cls(name=f'{domain}_{image_size}px_{digest}', **fields)

  def split_specs(self):
    """{split: [(subject, emotion, repeat), ...]}; subject ids are disjoint across splits."""
    out, first = {}, 0
    for split in SPLITS:
      n = getattr(self, f'{split}_subjects')
      classes = range(len(emotions.EMOTIONS)) if split == 'pool' else range(emotions.NUM_EKMAN)
      reps = self.pool_images_per_emotion if split == 'pool' else self.images_per_emotion
      out[split] = [(s, e, r) for s in range(first, first + n) for e in classes for r in range(reps)]
      first += n
    return out


def features(image_size):
  return tfds.features.FeaturesDict(
    {
      'image': tfds.features.Tensor(shape=(image_size, image_size, 1), dtype=np.uint8),
      'label': tfds.features.ClassLabel(names=emotions.EMOTIONS),
      'subject': tfds.features.Tensor(shape=(), dtype=np.int32),
      'aus': tfds.features.Tensor(shape=(emotions.NUM_AUS,), dtype=np.float32),
      'intensity': tfds.features.Tensor(shape=(), dtype=np.float32),
    }
  )


class ProceduralFaces(tfds.core.GeneratorBasedBuilder):
  """Greyscale faces with FACS action-unit expressions, rendered by fer_jax.data.faces."""

  VERSION = tfds.core.Version('1.0.0')
  BUILDER_CONFIGS = [ProceduralFacesConfig(name='a'), ProceduralFacesConfig(name='b', domain='b')]

  def _info(self):
    c = self.builder_config
    return tfds.core.DatasetInfo(
      builder=self,
      features=features(c.image_size),
      description=f'Procedural FACS faces, rendering domain {c.domain!r}.',
      metadata=tfds.core.MetadataDict(
        settings={
          f.name: getattr(c, f.name)
          for f in dataclasses.fields(ProceduralFacesConfig)
          if f.name not in ('name', 'version', 'release_notes', 'supported_versions', 'description', 'tags')
        },
        action_units=list(emotions.ACTION_UNITS),
      ),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(specs) for split, specs in self.builder_config.split_specs().items()}

  def _generate_examples(self, specs):
    c = self.builder_config
    images, meta = faces.render_specs(specs, c.image_size, c.seed, c.domain, c.min_intensity, c.max_intensity)
    for i in range(len(specs)):
      yield (
        i,
        {
          'image': images[i],
          'label': int(meta['label'][i]),
          'subject': meta['subject'][i],
          'aus': meta['aus'][i],
          'intensity': meta['intensity'][i],
        },
      )
