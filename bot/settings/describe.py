"""The one way a bad setting is reported: one line naming the variable, never a secret's value."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pydantic import ValidationError


def describe_error(
    exc: ValidationError,
    names: Mapping[str, str],
    *,
    echo: Collection[str] = (),
) -> str:
    """``bad setting NAME: what is wrong`` for the first problem of ``exc``.

    ``names`` maps a field to the variable a person sets (a field missing there is named as it
    is). A check across fields names its variables in its own message, which stands alone. The
    value given is shown only for the variables in ``echo``: the others may be secrets.
    """
    error = exc.errors(include_url=False)[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    field = ".".join(str(part) for part in error["loc"])
    name = names.get(field, field)
    line = f"bad setting {name}: {message}"
    given = error.get("input")
    if name in echo and isinstance(given, str | int | float):
        line += f" (got {given!r})"
    return line
