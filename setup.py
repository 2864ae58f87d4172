"""Build hook for the optional compiled runtime (bireid.runtime._engine); metadata lives in pyproject.toml."""
from setuptools import setup

setup()
