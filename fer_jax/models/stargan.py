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
"""
import flax.linen as nn
import jax.numpy as jnp

# PyTorch ConvTranspose2d(k=4, s=2, p=1) is lax.conv_transpose with padding k - 1 - p = 2 on each side:
# the output is exactly twice the input and the kernel is (4, 4, in, out), so the same parameter count.
_UP_PADDING = ((2, 2), (2, 2))


def _norm():
  # PyTorch InstanceNorm2d(affine=True): per-sample, per-channel statistics, eps 1e-5, scale and shift.
  return nn.InstanceNorm(epsilon=1e-5, use_scale=True, use_bias=True)


class ResidualBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    h = nn.Conv(self.features, (3, 3), padding=1, use_bias=False)(x)
    h = nn.relu(_norm()(h))
    h = nn.Conv(self.features, (3, 3), padding=1, use_bias=False)(h)
    return x + _norm()(h)


class Generator(nn.Module):
  """(images [N,H,W,C], one-hot or soft target labels [N,c_dim]) -> images (and the mask with attention)."""
  channels: int = 1
  conv_dim: int = 64
  c_dim: int = 7
  repeat_num: int = 6
  attention: bool = False

  @nn.compact
  def __call__(self, x, c, return_mask=False):
    n, h, w, _ = x.shape
    c = jnp.broadcast_to(c.astype(x.dtype)[:, None, None, :], (n, h, w, c.shape[-1]))
    y = jnp.concatenate([x, c], axis=-1)
    y = nn.relu(_norm()(nn.Conv(self.conv_dim, (7, 7), padding=3, use_bias=False)(y)))
    d = self.conv_dim
    for _ in range(2):
      d *= 2
      y = nn.relu(_norm()(nn.Conv(d, (4, 4), strides=2, padding=1, use_bias=False)(y)))
    for _ in range(self.repeat_num):
      y = ResidualBlock(d)(y)
    for _ in range(2):
      d //= 2
      y = nn.ConvTranspose(d, (4, 4), strides=(2, 2), padding=_UP_PADDING, use_bias=False)(y)
      y = nn.relu(_norm()(y))
    if not self.attention:
      out = jnp.tanh(nn.Conv(self.channels, (7, 7), padding=3, use_bias=False, name='to_image')(y))
      return (out, None) if return_mask else out
    colour = jnp.tanh(nn.Conv(self.channels, (7, 7), padding=3, use_bias=False, name='to_colour')(y))
    mask = nn.sigmoid(nn.Conv(1, (7, 7), padding=3, use_bias=False, name='to_mask')(y))
    out = mask * x + (1.0 - mask) * colour
    return (out, mask) if return_mask else out


class Discriminator(nn.Module):
  """images [N,H,W,C] -> (real/fake patch scores [N,H/2^r,W/2^r,1], class logits [N,c_dim])."""
  image_size: int = 64
  conv_dim: int = 64
  c_dim: int = 7
  repeat_num: int = 5

  @nn.compact
  def __call__(self, x):
    k = self.image_size // 2 ** self.repeat_num
    if k < 1:
      raise ValueError(f'd_repeat_num={self.repeat_num} halves a {self.image_size}px image below 1 pixel')
    d = self.conv_dim
    h = x
    for i in range(self.repeat_num):
      h = nn.leaky_relu(nn.Conv(d * 2 ** i, (4, 4), strides=2, padding=1)(h), 0.01)
    src = nn.Conv(1, (3, 3), padding=1, use_bias=False, name='src')(h)
    cls = nn.Conv(self.c_dim, (k, k), padding='VALID', use_bias=False, name='cls')(h)
    return src, cls.reshape(x.shape[0], -1)


def count_params(tree):
  import jax  # pylint: disable=import-outside-toplevel
  return int(sum(x.size for x in jax.tree.leaves(tree)))
