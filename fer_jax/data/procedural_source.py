"""`procedural:a` / `procedural:b`: the embedded procedural faces as a data source."""

from fer_jax.data import faces, procedural_tfds, sources
from fer_jax.infra.errors import UserError


@sources.register('procedural')
def make(arg, config, data_dir):
  if arg not in faces.DOMAINS:
    raise UserError(f'procedural:{arg}: unknown rendering domain {arg!r}; expected one of {", ".join(faces.DOMAINS)}')
  cfg = procedural_tfds.ProceduralFacesConfig.from_config(arg, config.data.image_size, config.data.procedural)
  b = procedural_tfds.ProceduralFaces(config=cfg, data_dir=data_dir, file_format='array_record')
  return sources.prepare(b)
