"""The README's Python snippets run (against the tiny model and data), so their shape cannot rot."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.DOTALL)


def test_the_readme_has_its_snippets():
    assert len(_snippets()) >= 2


@pytest.mark.parametrize("number", range(2))
def test_snippet_runs_on_the_tiny_model(number, tiny_linker, small_catalogue, tmp_path):
    from tests.training_data import write_tiny_data

    data = write_tiny_data(tmp_path / "data", small_catalogue)
    tiny_linker.save_pretrained(str(tmp_path / "linker"))
    code = _snippets()[number]
    for old, new in {
        "~/.cache/elq/default-linker": str(tmp_path / "linker"),
        '"entities.jsonl"': repr(data["catalogue"]),
        '"train.jsonl"': repr(data["train"]),
        '"dev.jsonl"': repr(data["dev"]),
        '"my-linker"': repr(str(tmp_path / "my-linker")),
        "s3://bucket/": "memory://bucket/",
    }.items():
        code = code.replace(old, new)
    if number == 1:  # the snippet saves to my-linker and loads it from a bucket: put it there
        code = code.replace(
            "linker.save_pretrained(",
            'linker.save_pretrained("memory://bucket/my-linker"); linker.save_pretrained(',
        )
    namespace: dict = {}
    exec(compile(code, f"README snippet {number}", "exec"), namespace)  # noqa: S102
    assert "linker" in namespace
