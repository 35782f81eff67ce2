"""A stage's typed config dataclass -> its command-line options, one way for `elq <stage>`,
`python -m pipelines.<stage>` and `ray job submit -- python -m pipelines.<stage>`.

Fields become options (type, default, help from `metadata["help"]` or the class docstring's
`Args:`); a dataclass-typed field (`IndexSpec`, `ActorResources`, `InferenceOverrides`) is
flattened into its own fields, prefixed by the field's `metadata["prefix"]` (default none).

    >>> app.command("build-index")(config_command(BuildIndexConfig, run))
    >>> build_config(BuildIndexConfig, {"embeddings": "e", "output": "o", "kind": "hnsw"}).index.kind
    <IndexKind.HNSW: 'hnsw'>
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import json
import logging
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any


def help_of(field: dataclasses.Field, documented: Mapping[str, str] | None = None) -> str:
    """A field's `metadata["help"]`, else its entry in `documented` (`docstring_args` of its class)."""
    return field.metadata.get("help") or (documented or {}).get(field.name, "")


def docstring_args(config_cls: type) -> dict[str, str]:
    """`name: text` entries of a Google-style `Args:` section, continuation lines joined, end stop dropped."""
    entries: dict[str, str] = {}
    name = None
    in_args = False
    for line in inspect.getdoc(config_cls).splitlines() if config_cls.__doc__ else []:
        stripped = line.strip()
        if stripped in ("Args:", "Attributes:"):
            in_args = True
        elif in_args and stripped and not line.startswith(" "):
            in_args = False
        elif in_args and line.startswith("    ") and not line.startswith("     ") and ":" in stripped:
            name, text = stripped.split(":", 1)
            entries[name] = text.strip()
        elif in_args and name and stripped:
            entries[name] += " " + stripped
    return {name: text.removesuffix(".") for name, text in entries.items()}  # help lines end bare


@dataclass(frozen=True)
class _Option:
    """One command-line option: a field of the config, or of a dataclass nested in it."""

    name: str  # the parameter name: prefix + field name ("index_kind" or "kind")
    path: tuple[str, ...]  # the field's path from the config ("index", "kind")
    hint: Any
    default: Any
    required: bool
    help: str
    aliases: tuple[str, ...] = ()  # more flags for it (`metadata["flags"]`, e.g. ("-m",))
    argument: bool = False  # positional (`metadata["argument"]`)


def config_options(
    config_cls: type, defaults: Any = None, prefix: str = "", path: tuple[str, ...] = ()
) -> list[_Option]:
    """The options of `config_cls`: its fields, with dataclass-typed fields (`IndexSpec`, `ActorResources`)
    flattened into their own fields, named with the field's `metadata["prefix"]` (default: none).

    Raises:
        ValueError: two options would have the same name.
    """
    hints = typing.get_type_hints(config_cls)
    documented = docstring_args(config_cls)
    options: list[_Option] = []
    for field in dataclasses.fields(config_cls):
        if not field.init:
            continue
        if defaults is not None:
            required, default = False, getattr(defaults, field.name)
        else:
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            default = (
                ...
                if required
                else (field.default if field.default is not dataclasses.MISSING else field.default_factory())
            )
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            nested_prefix = prefix + field.metadata.get("prefix", "")
            options += config_options(hint, default, nested_prefix, (*path, field.name))
            continue
        hint, default = _option_type(hint, default)
        options.append(
            _Option(
                prefix + field.name,
                (*path, field.name),
                hint,
                default,
                required,
                help_of(field, documented),
                tuple(field.metadata.get("flags", ())),
                bool(field.metadata.get("argument")),
            )
        )
    names = [o.name for o in options]
    if len(set(names)) != len(names):
        raise ValueError(
            f"{config_cls.__name__}: options named twice: {sorted({n for n in names if names.count(n) > 1})}"
        )
    return options


def _option_type(hint: Any, default: Any) -> tuple[Any, Any]:
    """A type Typer parses: a union of an enum and `str` (`IndexKind | str`) is a `str`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) > 1 and str in args:
        hint = str | None if type(None) in typing.get_args(hint) else str
    return hint, default.value if isinstance(default, enum.Enum) else default


def build_config(config_cls: type, values: Mapping[str, Any]) -> Any:
    """`config_cls` from option values by name (`config_options`), nested dataclasses rebuilt."""
    tree: dict[str, Any] = {}
    for option in config_options(config_cls):
        if option.name in values:
            node = tree
            for name in option.path[:-1]:
                node = node.setdefault(name, {})
            node[option.path[-1]] = values[option.name]

    def make(cls: type, given: dict[str, Any]) -> Any:
        hints = typing.get_type_hints(cls)
        return cls(
            **{k: make(hints[k], v) if dataclasses.is_dataclass(hints[k]) else v for k, v in given.items()}
        )

    return make(config_cls, tree)


def config_command(config_cls: type, run: Callable[[Any], dict | None]) -> Callable[..., dict | None]:
    """A Typer command whose options are `config_options(config_cls)` (type, default, help; a field's
    `metadata` may add `flags` such as `("-m",)` or make it a positional `argument`).

    One definition serves `elq <stage>` and `python -m pipelines.<stage>`; the command prints the summary as
    JSON and returns it (a `run` that prints its own output returns None).
    """
    import typer

    parameters, annotations = [], {}
    for option in config_options(config_cls):
        if option.argument:
            parameter: Any = typer.Argument(help=option.help, show_default=False)
        else:
            flag = "--" + option.name.replace("_", "-")
            if option.hint in (bool, bool | None):
                flag = f"{flag}/--no-{flag[2:]}"
            show = not option.required and option.default is not None
            parameter = typer.Option(flag, *option.aliases, help=option.help, show_default=show)
        annotation = Annotated[option.hint, parameter]
        annotations[option.name] = annotation
        parameters.append(
            inspect.Parameter(
                option.name, inspect.Parameter.KEYWORD_ONLY, default=option.default, annotation=annotation
            )
        )

    def command(**values: Any) -> dict | None:
        summary = run(build_config(config_cls, values))
        if summary is not None:  # a command that prints its own output returns None
            print(json.dumps(summary, indent=2, default=str))
        return summary

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {**annotations, "return": dict | None}
    command.__doc__ = (config_cls.__doc__ or "").strip().split("\n\n")[0]
    return command


def deferred(target: str) -> Callable[[Any], dict]:
    """The function `"module:name"`, imported when the command runs: building `elq`'s options loads
    neither torch nor the training loop nor the Wikipedia parsers."""
    module_name, name = target.split(":")

    def run(config: Any) -> dict:
        return getattr(importlib.import_module(module_name), name)(config)

    return run


def run_command_line(config_cls: type, run: Callable[[Any], dict], name: str, argv: list[str] | None) -> dict:
    """`main(argv)` of a stage: parse `argv` with the same options as `elq <name>`, run, return the summary.

    Usage errors print the usage and exit 2, as `elq` does; so do `ElqError`s and missing files, with their
    message.
    """
    import click
    import typer

    from elcore import settings
    from elcore.errors import ElqError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings.hf_offline()
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(name)(config_command(config_cls, run))
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        prog = f"python -m pipelines.{name.replace('-', '_')}" if " " not in name else f"elq {name}"
        result = app(args, prog_name=prog, standalone_mode=False)
    except click.ClickException as error:
        error.show()
        raise SystemExit(error.exit_code) from error
    except (ElqError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    return result if isinstance(result, dict) else {}
