"""The paper's "noncomplex CNN" (Gholipour Picha et al., VISAPP 2023).

conv32 3x3 relu -> conv64 3x3 relu -> maxpool2 -> dropout .25 -> conv128 3x3 relu -> maxpool2 -> conv128 3x3
relu -> maxpool2 -> dropout .25 -> dense1024 relu -> dropout .5 -> num_classes logits. Valid padding, no batch
norm: 4,966,022 parameters at 64x64x1 and 6 classes, like the PyTorch peer.
"""

import flax.linen as nn
import jax.numpy as jnp

from fer_jax.models.layers import Conv, Dropout, layer_impl, max_pool_2x2


class PaperCNN(nn.Module):
  num_classes: int
  conv_impl: str  # 'cpu' is faster on CPU, 'xla' for GPU/TPU (fer_jax.models.layers): config.classifier's
  dtype: jnp.dtype = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    impl = layer_impl(self.conv_impl)
    conv = lambda c: Conv(c, (3, 3), padding='VALID', impl=impl, dtype=self.dtype)
    pool = max_pool_2x2
    x = x.astype(self.dtype)
    x = nn.relu(conv(32)(x))
    x = nn.relu(conv(64)(x))
    x = Dropout(0.25, deterministic=not train)(pool(x))
    x = pool(nn.relu(conv(128)(x)))
    x = pool(nn.relu(conv(128)(x)))
    x = Dropout(0.25, deterministic=not train)(x)
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(1024, dtype=self.dtype)(x))
    x = Dropout(0.5, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)
