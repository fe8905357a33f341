"""JSON text both ways: values kept as input JSON, and output lines with fixed bytes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["RawJSON", "json_line", "json_text"]


class RawJSON(str):
    """A value kept as the JSON text it was in the input (nested too deep to decode)."""



def json_text(value: Any) -> str:
    """A value as compact JSON text (``RawJSON`` as it was in the input)."""
    if isinstance(value, RawJSON):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (RecursionError, TypeError, ValueError):
        return str(value)



def json_line(record: dict[str, Any]) -> str:
    """One output line: the same bytes whichever engine or process writes the record."""
    return json.dumps(record, ensure_ascii=False, default=_json_default) + "\n"



def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
