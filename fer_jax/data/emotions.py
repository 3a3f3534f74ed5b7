"""The 6 Ekman emotions (+ neutral), the FACS action units we render, and the EMFACS prototypes."""

import numpy as np

# Label order is part of every dataset's ClassLabel: the classifier uses the first 6, the GAN pool all 7.
EMOTIONS = ('anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral')
EKMAN = EMOTIONS[:6]
NEUTRAL = EMOTIONS.index('neutral')
NUM_EKMAN = len(EKMAN)

# The action units the renderer can move, each a local deformation of the face.
ACTION_UNITS = (
  1,  # inner brow raiser
  2,  # outer brow raiser
  4,  # brow lowerer (brows down and together, vertical furrows)
  5,  # upper lid raiser
  6,  # cheek raiser (lower lids up, cheeks lifted, crow's feet)
  7,  # lid tightener (narrower eyes)
  9,  # nose wrinkler (nostrils up, wrinkles on the bridge)
  10,  # upper lip raiser
  12,  # lip corner puller
  15,  # lip corner depressor
  16,  # lower lip depressor
  20,  # lip stretcher (mouth wider, thinner)
  23,  # lip tightener (lips thinner, mouth narrower)
  26,  # jaw drop
)
AU_INDEX = {au: i for i, au in enumerate(ACTION_UNITS)}
NUM_AUS = len(ACTION_UNITS)

# EMFACS prototypes (Friesen & Ekman, 1983; the major variant of each).
PROTOTYPES = {
  'anger': (4, 5, 7, 23),
  'disgust': (9, 10, 15, 16),
  'fear': (1, 2, 4, 5, 7, 20, 26),
  'happiness': (6, 12),
  'sadness': (1, 4, 15),
  'surprise': (1, 2, 5, 26),
  'neutral': (),
}


def prototype_matrix():
  """[7, NUM_AUS] 0/1 matrix: which AUs each emotion (in EMOTIONS order) activates."""
  m = np.zeros((len(EMOTIONS), NUM_AUS), np.float32)
  for e, aus in PROTOTYPES.items():
    for au in aus:
      m[EMOTIONS.index(e), AU_INDEX[au]] = 1.0
  return m


def label_index(name):
  """Emotion name -> label index, with a clear error for anything else."""
  from fer_jax.infra.errors import UserError  # pylint: disable=import-outside-toplevel

  key = name.strip().lower()
  if key not in EMOTIONS:
    raise UserError(f'unknown emotion {name!r}; expected one of {", ".join(EMOTIONS)}')
  return EMOTIONS.index(key)
