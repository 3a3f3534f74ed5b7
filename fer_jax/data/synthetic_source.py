"""`synthetic:DIR`: a synthetic training set (`fer_jax.synthetic` writes them) as a data source.

Reading one needs only TFDS: the writer, which needs both trained GANs, lives above the data layer.
"""

import glob
import os

import numpy as np
import tensorflow_datasets as tfds

from fer_jax.data import emotions, sources
from fer_jax.infra.errors import UserError


def features(image_size):
  """What every synthetic set holds, whatever made it: the `synthetic:` reader sees one layout."""
  return tfds.features.FeaturesDict(
    {
      'image': tfds.features.Tensor(shape=(image_size, image_size, 1), dtype=np.uint8),
      'label': tfds.features.ClassLabel(names=emotions.EMOTIONS),
      'subject': tfds.features.Tensor(shape=(), dtype=np.int32),
    }
  )


@sources.register('synthetic')
def make(arg, config, data_dir):
  del config, data_dir
  path = os.path.abspath(arg)
  if not os.path.exists(os.path.join(path, 'dataset_info.json')):
    found = sorted(glob.glob(os.path.join(path, '**', 'dataset_info.json'), recursive=True))
    if len(found) != 1:
      raise UserError(
        f'synthetic:{arg}: expected one synthetic set (a folder with dataset_info.json) '
        f'there, found {len(found)}; run python -m experiments.generate first'
      )
    path = os.path.dirname(found[0])
  return tfds.builder_from_directory(path)
