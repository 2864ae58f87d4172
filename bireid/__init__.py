"""bireid: 1-bit neural networks for person re-identification (BiRe-ID).

``bireid.create_model`` and ``bireid.load_model`` (both from ``bireid.factory``) are imported lazily so that
the deployment runtime (``bireid.runtime``) loads with NumPy alone, without torch.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "load_model"]


def __getattr__(name: str):
    if name in ("create_model", "load_model"):
        from . import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'bireid' has no attribute {name!r}")
