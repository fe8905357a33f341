"""``Config`` as TOML: read a settings file, print the defaults with their comments.

Why: thresholds must be changeable without Python (``dedup cluster --config dedup.toml``),
and a typo in a key must stop the run rather than silently keep a default. The comments
printed by ``dedup config`` are read from ``dedup/config.py`` itself, so they cannot drift
from the code.

A file holds one table per stage (``[clustering]``, ``[merge]``, ...), named like the
``Config`` fields, and may set only the keys it changes. TOML has no null: a setting whose
default may be None takes the string ``"none"`` for None.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import math
import tokenize
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dedup import config as config_module
from dedup.config import Config, Range

NONE = "none"  # TOML spelling of None


class ConfigError(ValueError):
    """A settings file that cannot become a ``Config``: one line naming the file and key."""


def load_config(path: str | Path) -> Config:
    """Read a TOML settings file into a ``Config`` (defaults for every key it omits)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    return config_from_mapping(data, str(path))


def config_from_mapping(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Build a ``Config`` from nested tables (as TOML gives them), checking every key, type
    and range (``config.Range``).

    ``source`` names the file in error messages.
    """
    config = typing.cast(Config, _build(Config, data, source, ""))
    problem = settings_conflict(config)
    if problem is not None:
        raise ConfigError(f"{source}: {problem}")
    return config


def settings_conflict(config: Config) -> str | None:
    """What makes settings that are each in range unusable together, or None: datasketch
    derives at least two LSH bands from a threshold and ``num_perm`` or refuses (0.99 needs
    more than 256 min-hashes), and pair scores with every weight 0 are all 0."""
    from dedup.candidates import lsh_params  # datasketch: only once a file was read

    num_perm = config.signatures.num_perm
    for key in ("copies_threshold", "events_threshold"):
        threshold = getattr(config.candidates, key)
        try:
            lsh_params(threshold, num_perm)
        except ValueError:
            return (f"candidates.{key} = {threshold} with signatures.num_perm = {num_perm} "
                    "leaves LSH fewer than 2 bands: lower the threshold or raise num_perm")
    refine = config.refine
    if not (refine.text_weight + refine.names_weight + refine.title_weight
            + refine.numbers_weight) > 0:
        return ("refine's text_weight, names_weight, title_weight and numbers_weight are all "
                "0: every pair would score 0; give one of them a weight")
    return None


def setting_range(cls: type, name: str) -> Range | None:
    """The ``Range`` a field of a config dataclass is annotated with (``Share``, ``Count``,
    ...), also inside ``X | None``."""
    return _range_of(typing.get_type_hints(cls, include_extras=True)[name])


def _range_of(kind: Any) -> Range | None:
    for option in typing.get_args(kind) if _is_union(kind) else (kind,):
        for extra in getattr(option, "__metadata__", ()):
            if isinstance(extra, Range):
                return extra
    return None


def _spell_range(low: float, high: float) -> str:
    def spell(x: float) -> str:
        return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"

    if high == math.inf:
        return f"at least {spell(low)}"
    return f"between {spell(low)} and {spell(high)}" if low >= 1e-6 or low == 0 else (
        f"above 0 and at most {spell(high)}")


def _build(cls: type, data: Mapping[str, Any], source: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.')} must be a table ([{prefix.rstrip('.')}]"
                          f"), not {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    annotated = typing.get_type_hints(cls, include_extras=True)
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in fields:
            where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
            raise ConfigError(f"{source}: unknown key {name!r} (known in {where}: "
                              f"{', '.join(fields)})")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            values[key] = _build(typing.cast(type, kind), value, source, f"{name}.")
        else:
            values[key] = _convert(kind, value, source, name)
            bounds = _range_of(annotated[key])
            if bounds is not None and values[key] is not None and not (
                    bounds.low <= values[key] <= bounds.high):
                raise ConfigError(f"{source}: {name} must be "
                                  f"{_spell_range(bounds.low, bounds.high)}, not {value!r}")
    return cls(**values)


def _convert(kind: Any, value: Any, source: str, name: str) -> Any:
    """``value`` as the field type ``kind`` wants it, or a ConfigError naming the key."""
    options = typing.get_args(kind) if _is_union(kind) else (kind,)
    if type(None) in options and (value is None or value == NONE):  # None: stored JSON
        return None
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if typing.get_origin(option) is typing.Literal and value in typing.get_args(option):
            return value
    raise ConfigError(f"{source}: {name} must be {_spell(options)}, not {_describe(value)}")


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def _spell(options: tuple[Any, ...]) -> str:
    words = []
    for option in options:
        if option is type(None):
            words.append(f'"{NONE}"')
        elif typing.get_origin(option) is typing.Literal:
            words.append(" or ".join(json.dumps(v) for v in typing.get_args(option)))
        else:
            words.append({bool: "true or false", int: "an integer", float: "a number",
                          str: "a string"}.get(option, str(option)))
    return " or ".join(words)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    return f"{type(value).__name__} {value!r}"  # TOML dates and times


# --------------------------------------------------------------------------- writing


def config_to_toml(config: Config | None = None, *, comments: bool = True) -> str:
    """``config`` (default: the defaults) as TOML that ``load_config`` reads back equal.

    With ``comments``, each table opens with its class docstring and each key carries the
    comments written above it (and beside it) in ``dedup/config.py``.
    """
    config = config or Config()
    notes = _source_comments() if comments else {}
    lines: list[str] = []
    if comments:
        lines += ["# dedup settings: every field of dedup.Config (`dedup config` prints this).",
                  "# Use with `dedup cluster --config FILE` or `dedup index add --config FILE`;",
                  "# a file may set only the keys it changes. TOML has no null: \"none\" means",
                  "# None where a default may be None."]
    for stage in dataclasses.fields(config):
        section = getattr(config, stage.name)
        cls_name = type(section).__name__
        if lines:
            lines.append("")
        lines.append(f"[{stage.name}]")
        if comments and (cls_name, "") in notes:
            lines += [*_comment_lines(notes[(cls_name, "")]), ""]
        for item in dataclasses.fields(section):
            if comments:
                lines += _comment_lines(notes.get((cls_name, item.name), []))
            line = f"{item.name} = {_toml_value(getattr(section, item.name))}"
            beside = notes.get((cls_name, f"{item.name}#"))
            lines.append(f"{line}  {beside[0]}" if beside else line)
    return "\n".join(lines) + "\n"


def _comment_lines(texts: list[str]) -> list[str]:
    return [text if text.startswith("#") else f"# {text}".rstrip() for text in texts]


def _toml_value(value: Any) -> str:
    if value is None:
        return json.dumps(NONE)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"no TOML spelling for {type(value).__name__} {value!r}")


def _source_comments() -> dict[tuple[str, str], list[str]]:
    """Comments of ``dedup/config.py``, keyed by (class, field): the full-line comments
    right above the field; (class, "field#"): the comment beside it; (class, ""): the
    class docstring. Empty when the source is not installed."""
    try:
        source = inspect.getsource(config_module)
    except (OSError, TypeError):
        return {}
    comments: dict[int, tuple[str, bool]] = {}  # line -> (text, the whole line is comment)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = (tok.string, not tok.line[: tok.start[1]].strip())
    notes: dict[tuple[str, str], list[str]] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        doc = ast.get_docstring(node)
        if doc:
            notes[(node.name, "")] = doc.splitlines()
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            name, line = item.target.id, item.lineno
            above: list[str] = []
            while (line - 1) in comments and comments[line - 1][1]:
                line -= 1
                above.insert(0, comments[line][0])
            if above:
                notes[(node.name, name)] = above
            beside = comments.get(item.end_lineno or item.lineno)
            if beside and not beside[1]:
                notes[(node.name, f"{name}#")] = [beside[0]]
    return notes


# --------------------------------------------------------------------------- comparing


def config_differences(left: Config, right: Config) -> list[tuple[str, Any, Any]]:
    """(dotted key, left value, right value) for every setting where the two differ."""
    out: list[tuple[str, Any, Any]] = []
    for stage in dataclasses.fields(left):
        a, b = getattr(left, stage.name), getattr(right, stage.name)
        for item in dataclasses.fields(a):
            x, y = getattr(a, item.name), getattr(b, item.name)
            if x != y:
                out.append((f"{stage.name}.{item.name}", x, y))
    return out


def config_to_json(config: Config) -> str:
    """Compact JSON of every setting (how a story index stores the config it was built with);
    ``config_from_mapping(json.loads(text))`` reads it back."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True, separators=(",", ":"))


def format_value(value: Any) -> str:
    """A setting as the TOML file spells it (for messages)."""
    return _toml_value(value)
