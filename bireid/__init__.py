"""bireid: 1-bit neural networks for person re-identification (BiRe-ID).

``bireid.create_model`` is imported lazily so that the deployment runtime (``bireid.runtime``) loads with
NumPy alone, without torch.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "create_model"]


def __getattr__(name: str):
    if name == "create_model":
        from .modeling import create_model

        return create_model
    raise AttributeError(f"module 'bireid' has no attribute {name!r}")
