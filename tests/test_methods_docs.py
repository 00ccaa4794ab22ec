"""docs/methods.md documents every method of the catalogue with its options and defaults."""

import re
from pathlib import Path

import pytest

from distill.methods import METHODS, method_options

from .methods_support import ALL_METHODS

DOC = (Path(__file__).parent.parent / "docs" / "methods.md").read_text()


def section(name: str) -> str:
    match = re.search(rf"^## {name}\n(.*?)(?=^## |\Z)", DOC, flags=re.S | re.M)
    assert match, f"docs/methods.md has no '## {name}' section"
    return match.group(1)


@pytest.mark.parametrize("name", [n for n in ALL_METHODS if n != "label_smoothing"] + ["kd"])
def test_each_method_has_a_section_with_options_defaults_and_an_example(name):
    text = section(name)
    for option, default in method_options(METHODS.get(name)).items():
        shown = "(required)" if default is None else str(default)
        assert re.search(rf"\| `{option}` \| `?{re.escape(shown)}`? \|", text), f"{name}.{option} = {shown}"
    assert f"method: {name}" in text
    assert METHODS.get(name).paper.split(",")[0] in text
