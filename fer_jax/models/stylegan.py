"""StyleGAN2-style generator and residual discriminator (Karras et al. 2020), greyscale, scaled by config.

Generator: mapping network (pixel-normed z -> w through `mapping_layers` equalized-lr dense layers with a
learning-rate multiplier), a learned 4x4 constant, then per resolution 4 -> image_size two modulated /
demodulated 3x3 convolutions (the first after a x2 upsample) with per-layer styles (affine of w), per-pixel
noise with a learned strength, and a skip "to-image" 1x1 modulated conv whose outputs are upsampled and
summed. Style mixing happens on the `ws` the caller passes ([B, num_ws, w_dim]); truncation is
`truncate(ws, w_avg, psi)`. With `num_classes` > 0 both are class-conditional (the one-stage option): the mapping
network reads z joined by an embedding of the label (StyleGAN2-ADA), and the discriminator is a projection
discriminator (its logit gains <embed(label), features>).

Modulated convolution uses the fused form that is exact for per-sample styles s and a shared kernel W:
  conv(x, W * s)[b] == conv(x[b] * s[b], W)      (s scales input channels)
  demod[b, o] = rsqrt(sum_{k,i} (W[k,i,o] s[b,i])^2 + eps) = rsqrt(s[b]^2 @ sum_k W[k]^2 + eps)
so one ordinary batched convolution does the work of StyleGAN2's grouped conv; on CPU it is much cheaper.

Discriminator: from-image 1x1 conv, residual blocks (two 3x3 convs, the second followed by a 2x average-pool
downsample; skip = pool + 1x1 conv; sum / sqrt 2) down to 4x4, minibatch standard deviation, 3x3 conv, two
dense layers. No normalisation layers. All weights use equalized learning rate (N(0, 1) storage, He scale
at run time), which is what makes Adam with one lr work across layers.

Resampling is a fixed [1, 3, 3, 1] binomial filter (upsample: zero-stuff + filter; downsample: filter +
stride 2), as in StyleGAN2, written as shifted adds (XLA CPU's depthwise convolutions are very slow).

`dtype` is the compute dtype of the convolutions and their activations (bfloat16 on GPUs/TPUs, as
StyleGAN2-ADA's mixed precision): parameters stay float32 and are cast where they are used, and what is small
but precision-sensitive stays float32 whatever it is: the mapping network (w, and so w_avg and truncation),
the styles and demodulation coefficients, the summed skip image (G's output), and D's 4x4 epilogue (minibatch
stddev, last conv, dense layers and the logit). bfloat16 has float32's exponent range, so no clamping is
needed (StyleGAN2-ADA's float16 needs conv_clamp). With float32 every cast is the identity.
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

_SQRT2 = math.sqrt(2.0)


def _f32(fn, x):
  """fn(x) computed in float32 and returned in x's dtype: for the elementwise ops that broadcast a parameter or a
  per-sample style over an activation (bias, modulation, demodulation, noise). Their gradients are sums over the
  broadcast axes (thousands of terms), which would accumulate in bfloat16 otherwise (a bias gradient 10-60% off
  at tiny shapes on CPU); fused into the neighbouring elementwise work, the float32 costs no memory traffic.
  With a float32 x it is fn(x)."""
  return fn(x.astype(jnp.float32)).astype(x.dtype)


def channels_at(res, image_size, channels, max_channels):
  """Channels at resolution `res`: `channels` at the image resolution, doubled per halving, capped."""
  return int(min(max_channels, channels * (image_size // res)))


def lrelu(x):
  # sqrt(2) gain keeps activations' second moment ~1 through the equalized-lr layers.
  return jax.nn.leaky_relu(x, 0.2) * _SQRT2


def _up1d(x, axis):
  # Zero-stuff then [1,3,3,1]/4*2 filter, written polyphase: XLA CPU's depthwise convs are ~100x slower.
  n = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (1, 1)
  xp = jnp.pad(x, pad)
  prev = jax.lax.slice_in_dim(xp, 0, n, axis=axis)
  nxt = jax.lax.slice_in_dim(xp, 2, n + 2, axis=axis)
  even = 0.25 * prev + 0.75 * x
  odd = 0.75 * x + 0.25 * nxt
  y = jnp.stack([even, odd], axis=axis + 1)
  return y.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1 :])


def _down1d(x, axis):
  # [1,3,3,1]/8 filter then stride 2 (zero padding 1 each side).
  n = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (1, 1)
  xp = jnp.pad(x, pad)
  taps = [jax.lax.slice_in_dim(xp, i, i + n - 1, stride=2, axis=axis) for i in range(4)]
  return (taps[0] + 3 * taps[1] + 3 * taps[2] + taps[3]) * 0.125


def upsample2x(x):
  """x2 upsample of NHWC: zero-stuffing + separable [1,3,3,1] filter (StyleGAN2's resampling)."""
  return _up1d(_up1d(x, 1), 2)


def downsample2x(x):
  """x2 downsample of NHWC: separable [1,3,3,1] filter, stride 2."""
  return _down1d(_down1d(x, 1), 2)


class EqualDense(nn.Module):
  """Dense layer with equalized learning rate and a learning-rate multiplier (mapping network)."""

  features: int
  lr_mul: float = 1.0
  bias_init: float = 0.0
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1]
    w = self.param('kernel', nn.initializers.normal(1.0 / self.lr_mul), (fan_in, self.features))
    y = x.astype(self.dtype) @ (w * (self.lr_mul / math.sqrt(fan_in))).astype(self.dtype)
    if self.use_bias:
      b = self.param('bias', nn.initializers.constant(self.bias_init / self.lr_mul), (self.features,))
      y = _f32(lambda y: y + b * self.lr_mul, y)
    return y


class EqualConv(nn.Module):
  """Conv with equalized learning rate ('SAME' padding)."""

  features: int
  kernel_size: int = 3
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    k, fan_in = self.kernel_size, self.kernel_size**2 * x.shape[-1]
    w = self.param('kernel', nn.initializers.normal(1.0), (k, k, x.shape[-1], self.features))
    y = jax.lax.conv_general_dilated(
      x.astype(self.dtype),
      (w * (1.0 / math.sqrt(fan_in))).astype(self.dtype),
      (1, 1),
      'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    )
    if self.use_bias:
      b = self.param('bias', nn.initializers.zeros, (self.features,))
      y = _f32(lambda y: y + b, y)
    return y


def _pixel_norm(x):
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-8)


class MappingNetwork(nn.Module):
  w_dim: int
  num_layers: int
  lr_mul: float
  num_classes: int = 0  # > 0: conditional (StyleGAN2-ADA): z joined by an embedding of the class

  @nn.compact
  def __call__(self, z, labels=None):
    x = _pixel_norm(z)
    if self.num_classes:
      embed = EqualDense(self.w_dim, name='embed')(jax.nn.one_hot(labels, self.num_classes))
      x = jnp.concatenate([x, _pixel_norm(embed)], axis=-1)
    for i in range(self.num_layers):
      x = lrelu(EqualDense(self.w_dim, lr_mul=self.lr_mul, name=f'fc{i}')(x))
    return x


class ModulatedConv(nn.Module):
  """Modulated (and optionally demodulated) conv, fused: modulate activations, convolve, demodulate."""

  features: int
  kernel_size: int = 3
  demodulate: bool = True
  upsample: bool = False
  dtype: jnp.dtype = jnp.float32  # of the convolution; the styles and demodulation are float32

  @nn.compact
  def __call__(self, x, w):
    in_ch, k = x.shape[-1], self.kernel_size
    styles = EqualDense(in_ch, bias_init=1.0, name='affine')(w)  # [B, in]
    weight = self.param('kernel', nn.initializers.normal(1.0), (k, k, in_ch, self.features))
    weight = weight * (1.0 / math.sqrt(k * k * in_ch))
    x = x.astype(self.dtype)
    if self.upsample:
      x = upsample2x(x)
    y = jax.lax.conv_general_dilated(
      _f32(lambda x: x * styles[:, None, None, :], x),
      weight.astype(x.dtype),
      (1, 1),
      'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    )
    if self.demodulate:
      wsq = jnp.sum(jnp.square(weight), axis=(0, 1))  # [in, out]
      demod = jax.lax.rsqrt(jnp.square(styles) @ wsq + 1e-8)  # [B, out]
      y = _f32(lambda y: y * demod[:, None, None, :], y)
    return y


class StyledLayer(nn.Module):
  """ModulatedConv + noise (learned strength, starts at 0) + bias + lrelu."""

  features: int
  upsample: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, w, noise_keys):
    y = ModulatedConv(self.features, upsample=self.upsample, dtype=self.dtype, name='conv')(x, w)
    strength = self.param('noise_strength', nn.initializers.zeros, ())
    # Drawn in float32 whatever the dtype: the same noise in every dtype.
    noise = jax.vmap(lambda k: jax.random.normal(k, y.shape[1:3] + (1,), jnp.float32))(noise_keys)
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    return _f32(lambda y: lrelu(y + noise * strength + bias), y)


class ToImage(nn.Module):
  """The skip branch's 1x1 modulated conv, in `dtype`; its output is float32 (the summed image stays float32)."""

  out_channels: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, w):
    y = ModulatedConv(self.out_channels, kernel_size=1, demodulate=False, dtype=self.dtype, name='conv')(x, w)
    return y.astype(jnp.float32) + self.param('bias', nn.initializers.zeros, (self.out_channels,))


def num_ws(image_size):
  """Number of style vectors: one per styled conv (1 at 4x4, 2 per higher level) + the last to-image."""
  levels = int(round(math.log2(image_size))) - 1  # 4, 8, ..., image_size
  return 1 + 2 * (levels - 1) + 1


class SynthesisNetwork(nn.Module):
  image_size: int
  channels: int
  max_channels: int
  out_channels: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, ws, noise_keys):
    b = ws.shape[0]
    ch = lambda r: channels_at(r, self.image_size, self.channels, self.max_channels)
    const = self.param('const', nn.initializers.normal(1.0), (4, 4, ch(4)))
    x = jnp.broadcast_to(const.astype(self.dtype), (b, 4, 4, ch(4)))
    # Noise of sample i depends only on its own key: a sample does not change with the batch it is in.
    keys = (jax.vmap(jax.random.fold_in, (0, None))(noise_keys, j) for j in range(num_ws(self.image_size)))
    styled = functools.partial(StyledLayer, dtype=self.dtype)
    to_image = functools.partial(ToImage, self.out_channels, dtype=self.dtype)
    x = styled(ch(4), name='b4_conv')(x, ws[:, 0], next(keys))
    img = to_image(name='b4_toimg')(x, ws[:, 1])
    i, res = 1, 8
    while res <= self.image_size:
      x = styled(ch(res), upsample=True, name=f'b{res}_conv0')(x, ws[:, i], next(keys))
      x = styled(ch(res), name=f'b{res}_conv1')(x, ws[:, i + 1], next(keys))
      img = upsample2x(img) + to_image(name=f'b{res}_toimg')(x, ws[:, i + 2])
      i, res = i + 2, res * 2
    return img


class Generator(nn.Module):
  """z [B, z_dim] -> image [B, H, W, 1] in about [-1, 1]. Call `mapping` / `synthesis` for control."""

  image_size: int
  channels: int  # config.identity_gan.channels / max_channels (no default: the caller passes the config's)
  max_channels: int
  z_dim: int = 64
  w_dim: int = 64
  mapping_layers: int = 4
  mapping_lr_mul: float = 0.01
  dtype: jnp.dtype = jnp.float32  # of the synthesis network's convolutions; mapping and output are float32
  # > 0: a class-conditional generator (the one-stage option: a new face of a given expression); its mapping
  # and every method that takes `labels` [B] int then need them. 0: unconditional (StyleGAN2).
  num_classes: int = 0

  def setup(self):
    if self.image_size < 8 or self.image_size & (self.image_size - 1):
      raise ValueError(f'image_size={self.image_size}: expected a power of two >= 8')
    self.mapping_net = MappingNetwork(self.w_dim, self.mapping_layers, self.mapping_lr_mul, self.num_classes)
    self.synthesis_net = SynthesisNetwork(self.image_size, self.channels, self.max_channels, dtype=self.dtype)

  @property
  def num_ws(self):
    return num_ws(self.image_size)

  def mapping(self, z, labels=None):
    return self.mapping_net(z, labels)

  def synthesis(self, ws, noise_keys):
    """ws [B, num_ws, w_dim], noise_keys [B, 2] (one PRNG key per sample) -> images [B, H, W, 1]."""
    return self.synthesis_net(ws, noise_keys)

  def __call__(self, z, noise_keys, labels=None):
    w = self.mapping(z, labels)
    return self.synthesis(jnp.broadcast_to(w[:, None], (w.shape[0], self.num_ws, w.shape[-1])), noise_keys)


def truncate(ws, w_avg, psi):
  """Truncation trick: pull styles towards the average w by psi (1 = none)."""
  return w_avg + psi * (ws - w_avg)


def minibatch_stddev(x, group_size=4):
  """Appends one channel: the std over a group of samples, averaged over features and pixels.

  Groups are consecutive samples, so with a batch sharded over devices (and a per-device batch divisible
  by the group size) no group spans devices.
  """
  b, h, w, c = x.shape
  g = math.gcd(group_size, b)
  y = x.reshape(b // g, g, h, w, c)
  y = jnp.sqrt(jnp.var(y, axis=1) + 1e-8)  # [b/g, h, w, c]
  y = jnp.mean(y, axis=(1, 2, 3))  # [b/g]
  y = jnp.repeat(y, g)[:, None, None, None] * jnp.ones((b, h, w, 1), x.dtype)
  return jnp.concatenate([x, y], axis=-1)


class DBlock(nn.Module):
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(EqualConv, dtype=self.dtype)
    skip = conv(self.features, 1, use_bias=False, name='skip')(downsample2x(x))
    y = lrelu(conv(x.shape[-1], name='conv0')(x))
    y = lrelu(conv(self.features, name='conv1')(downsample2x(y)))
    return (y + skip) * (1.0 / _SQRT2)


class Discriminator(nn.Module):
  """image [B, H, W, 1] in [-1, 1] (and labels [B] when conditional) -> logit [B]."""

  image_size: int
  channels: int  # config.identity_gan.channels / max_channels
  max_channels: int
  mbstd_group: int = 4
  dtype: jnp.dtype = jnp.float32  # of the blocks above 4x4; the 4x4 epilogue and the logit are float32
  # > 0: a projection discriminator (Miyato & Koyama 2018): the logit gains <embed(label), features>, so D
  # judges "a real face of this class", not only "a real face".
  num_classes: int = 0

  @nn.compact
  def __call__(self, img, labels=None):
    ch = lambda r: channels_at(r, self.image_size, self.channels, self.max_channels)
    x = lrelu(EqualConv(ch(self.image_size), 1, dtype=self.dtype, name='fromimg')(img))
    res = self.image_size
    while res > 4:
      x = DBlock(ch(res // 2), dtype=self.dtype, name=f'b{res}')(x)
      res //= 2
    x = minibatch_stddev(x.astype(jnp.float32), self.mbstd_group)
    x = lrelu(EqualConv(ch(4), name='b4_conv')(x))
    x = lrelu(EqualDense(ch(4), name='b4_fc')(x.reshape(x.shape[0], -1)))
    logit = EqualDense(1, name='out')(x)[:, 0]
    if self.num_classes:
      embed = EqualDense(ch(4), use_bias=False, name='embed')(jax.nn.one_hot(labels, self.num_classes))
      logit = logit + jnp.sum(embed * x, axis=-1) * (1.0 / math.sqrt(ch(4)))
    return logit


def make(
  image_size, z_dim, w_dim, mapping_layers, mapping_lr_mul, channels, max_channels, dtype='float32', num_classes=0
):
  """(Generator, Discriminator) of greyscale faces; `dtype` the compute dtype ('float32' | 'bfloat16'); both
  conditioned on `num_classes` labels when > 0."""
  dtype = jnp.dtype(dtype)
  gen = Generator(
    image_size=image_size,
    z_dim=z_dim,
    w_dim=w_dim,
    mapping_layers=mapping_layers,
    mapping_lr_mul=mapping_lr_mul,
    channels=channels,
    max_channels=max_channels,
    dtype=dtype,
    num_classes=num_classes,
  )
  disc = Discriminator(
    image_size=image_size, channels=channels, max_channels=max_channels, dtype=dtype, num_classes=num_classes
  )
  return gen, disc


def from_config(config):
  """(Generator, Discriminator) for `config.identity_gan` at `config.data.image_size`."""
  g = config.identity_gan
  return make(
    int(config.data.image_size),
    int(g.z_dim),
    int(g.w_dim),
    int(g.mapping_layers),
    float(g.mapping_lr_mul),
    int(g.channels),
    int(g.max_channels),
    str(g.dtype),
    int(g.num_classes),
  )
