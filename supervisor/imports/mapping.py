"""config/import.yaml: how the platform's export columns and values map onto the event contract.

Strictly validated like every config file (file:line: key: message). Each field names the
column headers it accepts (the first one present in the file is used); value maps translate the
platform's words into the contract's codes; date formats say how text dates are written (Excel
serial numbers and real date cells are always understood). All times are Beijing time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from supervisor.config.yamlconf import load_model

FIELDS = (
    "ticket", "created_at", "channel", "kind", "category", "urgent", "caller", "address", "grid",
    "summary", "unit", "co_units", "dispatched_at", "signed_at", "sign_by", "reply_by",
    "replied_at", "result", "reply_text", "handler", "contact", "visited_at", "satisfaction", "resolved", "reopen_count", "closed_at",
)  # fmt: skip
DATE_FIELDS = ("created_at", "dispatched_at", "signed_at", "sign_by", "reply_by", "replied_at",
               "visited_at", "closed_at")  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Model):
    """Field -> the column headers that may hold it (the usual variants of each city)."""

    ticket: list[str] = Field(min_length=1)
    created_at: list[str] = []
    channel: list[str] = []
    kind: list[str] = []
    category: list[str] = []
    urgent: list[str] = []
    caller: list[str] = []
    address: list[str] = []
    grid: list[str] = []
    summary: list[str] = []
    unit: list[str] = []
    co_units: list[str] = []
    dispatched_at: list[str] = []
    signed_at: list[str] = []
    sign_by: list[str] = []
    reply_by: list[str] = []
    replied_at: list[str] = []
    result: list[str] = []
    reply_text: list[str] = []  # the reply's full text (回复内容), reviewed (答复审核)
    handler: list[str] = []  # 承办人
    contact: list[str] = []  # the handler's number
    visited_at: list[str] = []
    satisfaction: list[str] = []
    resolved: list[str] = []
    reopen_count: list[str] = []
    closed_at: list[str] = []


Channel = Literal["phone", "provincial", "wechat", "web", "sms", "app", "visit", "grid"]
Kind = Literal["complaint", "help", "consultation", "suggestion", "praise"]
Satisfaction = Literal["satisfied", "basically_satisfied", "dissatisfied"]


class Values(_Model):
    """The platform's words -> the contract's codes. A value not listed is a bad cell."""

    channel: dict[str, Channel] = {}
    kind: dict[str, Kind] = {}
    satisfaction: dict[str, Satisfaction] = {}
    boolean: dict[str, bool] = {}


class Mapping(_Model):
    # the header is the first of the first `header_search_rows` rows holding a ticket column
    header_search_rows: int = Field(default=20, ge=1, le=1000)
    sheet: str | int = 0  # a sheet name, or its position (0 = the first)
    date_formats: list[str] = Field(min_length=1)
    list_separators: str = "，,、；;"
    # cell texts that mean "nothing here" (a callback result of 未回访 is no callback)
    empty_values: list[str] = []
    columns: Columns
    values: Values = Values()

    @field_validator("date_formats")
    @classmethod
    def _formats(cls, v: list[str]) -> list[str]:
        for f in v:
            if "%" not in f:
                raise ValueError(f"{f!r} is not a strptime format (write e.g. %Y-%m-%d %H:%M)")
        return v

    def headers(self) -> dict[str, list[str]]:
        return {name: list(getattr(self.columns, name)) for name in FIELDS}


def load_mapping(path: Path | str) -> Mapping:
    """The mapping file, or ConfigInvalid listing every problem as file:line: key: message."""
    return load_model(Mapping, path)


def check_mapping(config_dir: Path) -> list[str]:
    """Problems of config_dir/import.yaml for `check` (none when the office has no such file)."""
    from supervisor.config.yamlconf import ConfigInvalid

    path = Path(config_dir) / "import.yaml"
    if not path.exists():
        return []
    try:
        load_mapping(path)
    except ConfigInvalid as exc:
        return [str(e) for e in exc.errors]
    return []
