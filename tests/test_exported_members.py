"""The public façade: one list, every name importable, documented and defined in a public module.

Modelled on httpx's tests/test_exported_members.py.
"""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import releaserisk

PACKAGE = Path(releaserisk.__file__).parent


def _is_private(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in module.split("."))


def test_all_is_the_export_table_plus_the_version_and_the_error_module():
    assert releaserisk.__all__ == sorted([*releaserisk._EXPORTS, "__version__", "errors"])
    assert len(set(releaserisk.__all__)) == len(releaserisk.__all__)


@pytest.mark.parametrize("name", sorted(releaserisk._EXPORTS))
def test_every_public_name_is_importable_documented_and_lives_in_a_public_module(name):
    obj = getattr(releaserisk, name)
    module = releaserisk._EXPORTS[name]
    assert not _is_private(module), f"{name} is exported from the private module {module}"
    assert getattr(importlib.import_module(module), name) is obj
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert not _is_private(obj.__module__), f"{name} is defined only in the private module {obj.__module__}"
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_type_checking_imports_match_the_export_table():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
    imported = {}
    for node in ast.walk(block):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                imported[alias.asname or alias.name] = node.module
    imported.pop("errors", None)  # the exception module itself
    assert imported == releaserisk._EXPORTS


def test_dir_lists_the_public_api_and_unknown_names_raise():
    assert dir(releaserisk) == releaserisk.__all__
    with pytest.raises(AttributeError):
        releaserisk.no_such_thing  # noqa: B018
