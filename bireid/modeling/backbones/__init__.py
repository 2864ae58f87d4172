"""Backbones: real-valued ResNets (``resnet``) and their 1-bit counterparts (``binary_resnet``); importing this
package registers both families."""

from . import binary_resnet, resnet  # noqa: F401  (registration side effects)
