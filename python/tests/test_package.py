"""The installed package: public names documented, stubs and py.typed shipped."""

from __future__ import annotations

from pathlib import Path

import revode


def test_public_names_have_docstrings():
    for name in revode.__all__:
        obj = getattr(revode, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
    for name in ["gradient", "solve", "problem", "builtin", "from_file", "default_params"]:
        assert getattr(revode.Model, name).__doc__, name


def test_type_information_is_shipped():
    package = Path(revode.__file__).parent
    assert (package / "py.typed").exists()
    stub = (package / "_revode.pyi").read_text()
    for name in ["def grad(", "def solve(", "def check(", "def tune(", "def grad_batch(", "def load_model(", "def grad_model("]:
        assert name in stub, name
    assert isinstance(revode.__version__, str)
