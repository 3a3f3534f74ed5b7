"""clu metric writers (TensorBoard) without TensorFlow.

clu's `metric_writers` package imports its TensorFlow SummaryWriter when it is imported. TensorFlow is
not a dependency of ours, so when it is missing we register a tensorboardX-backed SummaryWriter under the
module name clu expects before clu loads; everything else (LoggingWriter, MultiWriter, create_default_writer)
is clu's own.
"""

import importlib.util
import sys
import types

import numpy as np


def _install_tensorboardx_summary_writer():
  if importlib.util.find_spec('tensorflow') is not None or 'clu.metric_writers' in sys.modules:
    return
  import tensorboardX  # pylint: disable=import-outside-toplevel

  class SummaryWriter:  # duck-types clu.metric_writers.interface.MetricWriter
    """TensorBoard event files through tensorboardX."""

    def __init__(self, logdir):
      self._w = tensorboardX.SummaryWriter(logdir, flush_secs=30)

    def write_summaries(self, step, values, metadata=None):
      for k, v in values.items():
        self._w.add_scalar(k, float(np.asarray(v).mean()), step)

    def write_scalars(self, step, scalars):
      for k, v in scalars.items():
        self._w.add_scalar(k, float(v), step)

    def write_images(self, step, images):
      for k, v in images.items():  # [N, H, W, C] in [0, 1] or uint8
        self._w.add_images(k, np.asarray(v), step, dataformats='NHWC')

    def write_videos(self, step, videos):
      pass

    def write_audios(self, step, audios, *, sample_rate):
      pass

    def write_texts(self, step, texts):
      for k, v in texts.items():
        self._w.add_text(k, v, step)

    def write_histograms(self, step, arrays, num_buckets=None):
      for k, v in arrays.items():
        self._w.add_histogram(k, np.asarray(v), step)

    def write_pointcloud(self, step, point_clouds, *, point_colors=None, configs=None):
      pass

    def write_hparams(self, hparams):
      self._w.add_text('hparams', '\n'.join(f'{k}: {v}' for k, v in sorted(hparams.items())), 0)

    def flush(self):
      self._w.flush()

    def close(self):
      self._w.close()

  shim = types.ModuleType('clu.metric_writers.summary_writer')
  shim.SummaryWriter = SummaryWriter
  sys.modules['clu.metric_writers.summary_writer'] = shim


_install_tensorboardx_summary_writer()

from clu import metric_writers  # noqa: E402  # pylint: disable=g-import-not-at-top,wrong-import-position


def create_writer(logdir):
  """Logging + TensorBoard writer; only process 0 writes event files."""
  import jax  # pylint: disable=import-outside-toplevel

  return metric_writers.create_default_writer(logdir, just_logging=jax.process_index() > 0, asynchronous=False)
