"""Backbones: real-valued ResNets (``resnet``) and their 1-bit counterparts (``binary_resnet``)."""
