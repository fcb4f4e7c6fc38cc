"""Typed reads of submitted form values, collecting every problem under its field name.

Every value may arrive as text (query string, urlencoded or multipart form) or already typed
(a `/api/v1` body); messages follow WTForms' so DIGITS clients read familiar errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TRUE = ("1", "true", "on", "yes", "y")
FALSE = ("0", "false", "off", "no", "n", "")


class FormErrors(Exception):
    """Input refused before any command was sent: field → messages (DIGITS's 400 body)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


class Fields:
    """Typed reads of submitted values; every problem is collected under its field name."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = values
        self.errors: dict[str, list[str]] = {}

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def check(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)

    def raw(self, name: str) -> Any:
        value = self.values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value.strip() if isinstance(value, str) else value

    def text(self, name: str, default: str = "", required: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            if required:
                self.error(name, "This field is required.")
            return default
        return str(value)

    def integer(
        self,
        name: str,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
        required: bool = False,
    ) -> int | None:
        value = self.raw(name)
        if value is None:
            if required:
                self.error(name, "This field is required.")
            return default
        try:
            number = _to_int(value)
        except ValueError:
            self.error(name, "Not a valid integer value.")
            return default
        return self._bounded(name, number, minimum, maximum)

    def number(
        self,
        name: str,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = _to_float(value)
        except ValueError:
            self.error(name, "Not a valid float value.")
            return default
        return self._bounded(name, number, minimum, maximum)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if str(value) not in choices:
            self.error(name, f"Not a valid choice: {value!r} (one of {', '.join(choices)}).")
            return default
        return str(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        # A checkbox after a hidden "0" of the same name sends "0,1" when ticked: last wins.
        text = str(value).rsplit(",", 1)[-1].strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        self.error(name, "Not a valid boolean value.")
        return default

    def numbers(
        self, name: str, default: list[float], minimum: float, integer: bool = False
    ) -> list[Any]:
        """A comma list (`[0.01, 0.02]` or `0.01,0.02`): DIGITS's sweep fields."""
        value = self.raw(name)
        if value is None:
            return default
        parts = value if isinstance(value, list) else str(value).strip("[] ").split(",")
        out: list[Any] = []
        for part in parts:
            if isinstance(part, str) and not part.strip():
                continue
            try:
                number = _to_int(part) if integer else _to_float(part)
            except ValueError:
                kind = "integer" if integer else "float"
                self.error(name, f"Not a valid {kind} value: {str(part).strip()!r}.")
                return default
            if number < minimum:
                self.error(name, f"Every value must be at least {minimum:g}.")
                return default
            out.append(number)
        return out or default

    def _bounded(self, name: str, number: Any, minimum: Any, maximum: Any) -> Any:
        if minimum is not None and number < minimum:
            self.error(name, f"Number must be at least {minimum}.")
        elif maximum is not None and number > maximum:
            self.error(name, f"Number must be at most {maximum}.")
        return number


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return int(str(value).strip())


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(value)
    return number


# Fields of a request, not of the job: a clone is another request (its own key and CSRF token;
# a copied token would fail the clone's own check, and the job JSON is read by other users).
NOT_KEPT = frozenset({"username", "idempotency_key", "_csrf_token"})


def submitted(values: Mapping[str, Any]) -> dict[str, str]:
    """The submitted fields as text (kept in the job for clone), without NOT_KEPT."""
    return kept_form(
        {k: str(v) for k, v in values.items() if isinstance(v, str | int | float | bool | list)}
    )


def kept_form(form: Mapping[str, str]) -> dict[str, str]:
    """A job's saved form without NOT_KEPT (jobs saved before it kept the CSRF token)."""
    return {k: v for k, v in form.items() if k not in NOT_KEPT}
