"""bireid: 1-bit neural networks for person re-identification (BiRe-ID)."""

__version__ = "0.1.0"

from .modeling import create_model  # noqa: E402

__all__ = ["__version__", "create_model"]
