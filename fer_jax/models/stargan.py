"""StarGAN (Choi et al., 2018) in Flax linen, layer for layer the PyTorch peer's (`torch_peers.py stargan`).

Generator: the target label is tiled over the image and concatenated as extra channels, then a 7x7 stem,
two 4x4 stride-2 downsamples, `repeat_num` residual blocks, two 4x4 stride-2 transposed-conv upsamples and a
7x7 conv to `tanh`. Every conv is bias-free and followed by an affine instance norm (the norm's shift makes
a bias redundant), as in the peer. With `attention=True` the last layer becomes GANimation's two heads: a
colour image (tanh) and an attention mask (sigmoid), composed as `mask * input + (1 - mask) * colour` so the
generator only repaints where the expression changes.

Discriminator: a PatchGAN of `repeat_num` 4x4 stride-2 convs (bias, LeakyReLU 0.01, no norm: the gradient
penalty is per sample, which a batch-coupled norm would break) with a 3x3 real/fake head and a class head
whose kernel covers the whole remaining map (image_size / 2**repeat_num).

Images are NHWC in [-1, 1].

Every conv goes through `fer_jax.models.layers`. `conv_impl='cpu'` rewrites the resampling convs (stride 2,
transposed) as stride-1 convs, whose gradients XLA:CPU lowers without the very slow dilated convolutions,
and the critic's convs (differentiated twice by the gradient penalty) as matmuls; same function and
parameters either way. PyTorch's ConvTranspose2d(k=4, s=2, p=1) is `layers.ConvTranspose`:
`lax.conv_transpose` with padding k - 1 - p = 2 on each side, output exactly twice the input, kernel
(4, 4, in, out), so the same parameter count.
"""

import flax.linen as nn
import jax.numpy as jnp

from fer_jax.data import emotions
from fer_jax.models.layers import Conv, ConvTranspose, layer_impl


def _norm(dtype):
  # PyTorch InstanceNorm2d(affine=True): per-sample, per-channel statistics, eps 1e-5, scale and shift.
  # (flax computes the statistics in float32 whatever the compute dtype.)
  return nn.InstanceNorm(epsilon=1e-5, use_scale=True, use_bias=True, dtype=dtype)


class ResidualBlock(nn.Module):
  features: int
  impl: str = 'xla'  # a layers.IMPLS lowering
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    conv = lambda: Conv(self.features, (3, 3), padding=1, use_bias=False, impl=self.impl, dtype=self.dtype)
    h = nn.relu(_norm(self.dtype)(conv()(x)))
    h = conv()(h)
    return x + _norm(self.dtype)(h)


class Generator(nn.Module):
  """(images [N,H,W,C], one-hot or soft target labels [N,c_dim]) -> images (and the mask with attention)."""

  # No defaults but dtype's: the caller passes config.expression_gan's (`from_config`).
  channels: int
  conv_dim: int
  c_dim: int
  repeat_num: int
  attention: bool
  conv_impl: str
  dtype: jnp.dtype = jnp.float32  # compute dtype (bfloat16 on GPU/TPU); parameters and outputs float32

  @nn.compact
  def __call__(self, x, c, return_mask=False):
    impl = layer_impl(self.conv_impl)
    conv = lambda *a, **k: Conv(*a, use_bias=False, impl=impl, dtype=self.dtype, **k)
    norm = lambda: _norm(self.dtype)
    x_in, x = x, x.astype(self.dtype)
    n, h, w, _ = x.shape
    c = jnp.broadcast_to(c.astype(x.dtype)[:, None, None, :], (n, h, w, c.shape[-1]))
    y = jnp.concatenate([x, c], axis=-1)
    y = nn.relu(norm()(conv(self.conv_dim, (7, 7), padding=3)(y)))
    d = self.conv_dim
    for _ in range(2):
      d *= 2
      y = nn.relu(norm()(conv(d, (4, 4), strides=2, padding=1)(y)))
    for _ in range(self.repeat_num):
      y = ResidualBlock(d, impl, self.dtype)(y)
    for _ in range(2):
      d //= 2
      y = ConvTranspose(d, use_bias=False, impl=impl, dtype=self.dtype)(y)
      y = nn.relu(norm()(y))
    if not self.attention:
      out = jnp.tanh(conv(self.channels, (7, 7), padding=3, name='to_image')(y).astype(jnp.float32))
      return (out, None) if return_mask else out
    colour = jnp.tanh(conv(self.channels, (7, 7), padding=3, name='to_colour')(y).astype(jnp.float32))
    mask = nn.sigmoid(conv(1, (7, 7), padding=3, name='to_mask')(y).astype(jnp.float32))
    out = mask * x_in + (1.0 - mask) * colour
    return (out, mask) if return_mask else out


class Discriminator(nn.Module):
  """images [N,H,W,C] -> (real/fake patch scores [N,H/2^r,W/2^r,1], class logits [N,c_dim])."""

  image_size: int  # no defaults but dtype's: the caller passes the config's (`from_config`)
  conv_dim: int
  c_dim: int
  repeat_num: int
  conv_impl: str
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = self.image_size // 2**self.repeat_num
    if k < 1:
      raise ValueError(f'd_repeat_num={self.repeat_num} halves a {self.image_size}px image below 1 pixel')
    d = self.conv_dim
    h = x.astype(self.dtype)
    impl = layer_impl(self.conv_impl, differentiated_twice=True)  # the gradient penalty
    for i in range(self.repeat_num):
      h = nn.leaky_relu(Conv(d * 2**i, (4, 4), strides=2, padding=1, impl=impl, dtype=self.dtype)(h), 0.01)
    head = lambda *a, **kw: Conv(*a, use_bias=False, impl=impl, dtype=self.dtype, **kw)
    src = head(1, (3, 3), padding=1, name='src')(h)
    cls = head(self.c_dim, (k, k), padding='VALID', name='cls')(h)
    return src.astype(jnp.float32), cls.reshape(x.shape[0], -1).astype(jnp.float32)


def condition_dim(condition, num_classes):
  """Size of G's condition vector and of the critic's condition head: the classes (StarGAN) or the action
  units (GANimation, `expression_gan.condition='aus'`)."""
  return emotions.NUM_AUS if condition == 'aus' else int(num_classes)


def make(image_size, conv_dim, c_dim, repeat_num, d_repeat_num, attention, conv_impl, dtype):
  """(Generator, Discriminator) of greyscale faces."""
  dtype = jnp.dtype(dtype)
  g = Generator(1, conv_dim, c_dim, repeat_num, attention, conv_impl, dtype)
  return g, Discriminator(image_size, conv_dim, c_dim, d_repeat_num, conv_impl, dtype)


def from_config(config):
  """(Generator, Discriminator) for `config.expression_gan` at `config.data.image_size`."""
  e = config.expression_gan
  return make(
    int(config.data.image_size),
    int(e.conv_dim),
    condition_dim(e.condition, e.num_classes),
    int(e.repeat_num),
    int(e.d_repeat_num),
    bool(e.attention),
    str(e.conv_impl),
    str(e.dtype),
  )
