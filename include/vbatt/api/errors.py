"""The write API's refusals: a message for people plus, where it helps a program, a code
(``battery_exists``, ``version_exists``, ``backdated``, ...) and the bad fields."""

from __future__ import annotations

from fastapi import HTTPException


class Refused(HTTPException):
    """An answer ``{"detail": ..., "code": ..., "errors": {field: message}}``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, detail, headers=headers)
        self.body: dict = {"detail": detail}
        if code:
            self.body["code"] = code
        if errors:
            self.body["errors"] = errors


def invalid(problems: dict[str, str]) -> Refused:
    """422 naming every bad field."""
    names = ", ".join(sorted(problems))
    return Refused(
        422,
        f"{len(problems)} field(s) refused, nothing stored: {names}",
        code="invalid",
        errors=dict(sorted(problems.items())),
    )
