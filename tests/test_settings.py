"""What a layer is given of an environment: the shared identity and its own settings."""

from __future__ import annotations

import ast
import types
import typing
from operator import attrgetter
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS
from modules.config import Environment, load_environment
from modules.config.settings import SETTINGS, Identity, settings_for, source_of

LAYERS_DIR = Path(__file__).resolve().parent.parent / "modules" / "layers"


def _plain(kind: object) -> object:
    """A type without its Annotated constraints (pydantic keeps those apart from the annotation)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        return _plain(args[0])
    if origin in (typing.Union, types.UnionType):
        return frozenset(_plain(arg) for arg in args)
    if origin is not None:
        return (origin, tuple(_plain(arg) for arg in args))
    return kind


def _annotation(path: str) -> object:
    """The annotation of a dotted config field, e.g. `llm.capacity` -> Capacity."""
    model: type = Environment
    *sections, name = path.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    return model.model_fields[name].annotation


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_settings_field_holds_the_value_of_its_source(env_name: str) -> None:
    env = load_environment(env_name)
    for layer, kind in SETTINGS.items():
        settings = settings_for(env, layer)
        assert isinstance(settings, kind)
        for field in kind.model_fields:
            assert getattr(settings, field) == attrgetter(source_of(layer, field))(env), (layer, field)


def test_a_borrowed_field_has_the_type_of_the_field_it_copies() -> None:
    """Renaming or retyping a config field fails here, not at synth in one environment."""
    for layer, kind in SETTINGS.items():
        for field, info in kind.model_fields.items():
            assert _plain(info.annotation) == _plain(_annotation(source_of(layer, field))), (layer, field)


def test_identity_names_resources_by_project_environment_and_suffix() -> None:
    identity = Identity.of(load_environment("prod"))
    assert identity.resource_name("gpu") == "llmlite-prod-gpu"
    assert (identity.region, identity.protect_stateful) == ("eu-west-2", True)


def test_no_layer_reads_the_whole_environment() -> None:
    """Layers take an Identity and their settings; the Environment model stays with config and engine."""
    readers = []
    for path in sorted(LAYERS_DIR.glob("*.py")):
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        imported = {a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)
                    for a in n.names}
        if "Environment" in names | imported:
            readers.append(path.name)
    assert readers == []
