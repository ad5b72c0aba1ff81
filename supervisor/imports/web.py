"""The desk's 导入 (import) page: the supervisor uploads the platform's export, sees the dry-run
summary (rows, new and known events, bad rows, units not in the directory), then confirms.

    setup_import_routes(app, supervisor=lambda: daemon.supervisor,
                        mapping_path=config_dir / "import.yaml", upload_dir=Path("var/imports"),
                        prefix="/desk/import", guard=desk_guard)

The upload is kept under upload_dir with a random name until it is confirmed (then deleted), so
the import stores exactly the file that was previewed. `guard(request)` (optional, async) runs
first in every handler (signed in, allowed to import). `csrf` (optional) puts the host's token
in every form (first, so the upload's token is read before its file) and checks it on both
POSTs. `page_render(request, context)` (optional) renders inside the host's layout (the desk's
desk_import.html, which includes import_body.html); without it the page is import.html alone.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from jinja2 import Environment, PackageLoader, select_autoescape

from supervisor.config.yamlconf import ConfigInvalid
from supervisor.core.inputs import text_problem
from supervisor.imports.command import DatabaseBusy, import_file
from supervisor.imports.mapping import load_mapping
from supervisor.imports.readers import SUFFIXES, ReadError

Guard = Callable[[web.Request], Awaitable[None]]
PageRender = Callable[[web.Request, dict[str, Any]], web.StreamResponse]
MAX_UPLOAD = 64 * 1024 * 1024
KEEP_UPLOAD_S = 24 * 3600  # an upload previewed but never confirmed
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_env = Environment(
    loader=PackageLoader("supervisor.imports", "templates"), autoescape=select_autoescape(["html"])
)


@dataclass(frozen=True)
class Csrf:
    """The host's CSRF token for a request, and its check of a token a form sent back."""

    token: Callable[[web.Request], str]
    check: Callable[[web.Request, str | None], bool]


def _refused() -> web.Response:
    return web.Response(
        status=403, text="CSRF 校验失败：请刷新页面后重试", content_type="text/plain"
    )


def setup_import_routes(
    app: web.Application,
    *,
    supervisor: Callable[[], Any],
    mapping_path: Path,
    upload_dir: Path = Path("var/imports"),
    prefix: str = "/desk/import",
    guard: Guard | None = None,
    csrf: Csrf | None = None,
    page_render: PageRender | None = None,
) -> None:
    def page(request: web.Request, **given: Any) -> web.StreamResponse:
        context: dict[str, Any] = {
            "prefix": prefix, "suffixes": "、".join(SUFFIXES), "error": None, "summary": None,
            "done": False, "token": "", "suffix": "", "strict": False, "filename": "",
            "csrf": csrf.token(request) if csrf else "", **given,
        }  # fmt: skip
        if page_render is not None:
            return page_render(request, context)
        text = _env.get_template("import.html").render(**context)
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    def mapping():
        try:
            return load_mapping(mapping_path)
        except (ConfigInvalid, OSError) as exc:
            raise web.HTTPInternalServerError(text=f"导入配置有误：{exc}") from None

    async def form(request: web.Request) -> web.StreamResponse:
        if guard is not None:
            await guard(request)
        return page(request)

    async def preview(request: web.Request) -> web.StreamResponse:
        if guard is not None:
            await guard(request)
        name, data, strict = None, b"", False
        token_ok = csrf is None
        try:  # not multipart, or a malformed part (a NUL in its headers...): the sender's error
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "csrf" and csrf is not None:
                    given = (await part.read(decode=False))[:256].decode(errors="replace")
                    token_ok = csrf.check(request, given)
                elif not token_ok:  # the token comes first: nothing of a forged upload is read
                    return _refused()
                elif part.name == "file" and part.filename:
                    if text_problem(part.filename):  # a NUL or a lone surrogate: not storable
                        return page(request, error="文件名含有无效字符，请重命名后再上传")
                    name = Path(part.filename).name
                    data = await part.read(decode=False)
                    if len(data) > MAX_UPLOAD:
                        return page(request, error="文件过大（上限64MB）")
                elif part.name == "strict":
                    strict = True
        except (HttpProcessingError, ValueError, AssertionError, KeyError):
            raise web.HTTPBadRequest(text="上传内容格式无效 (malformed multipart body)") from None
        if not token_ok:
            return _refused()
        if not name or Path(name).suffix.lower() not in SUFFIXES:
            return page(request, error=f"请选择平台导出的工单文件（{'、'.join(SUFFIXES)}）")
        token = secrets.token_urlsafe(24)
        stored = upload_dir / f"{token}{Path(name).suffix.lower()}"
        await asyncio.to_thread(_save, stored, data)
        try:
            summary = await import_file(supervisor(), stored, mapping(), dry_run=True, name=name)
        except ReadError as exc:
            await asyncio.to_thread(stored.unlink, True)
            return page(request, error=str(exc).replace(str(stored), name))
        return page(
            request, summary=summary, token=token, suffix=stored.suffix, strict=strict,
            filename=name,
        )  # fmt: skip

    async def confirm(request: web.Request) -> web.StreamResponse:
        if guard is not None:
            await guard(request)
        form_data = await request.post()
        if csrf is not None:
            given = form_data.get("csrf")
            if not csrf.check(request, given if isinstance(given, str) else None):
                return _refused()
        token, suffix = str(form_data.get("token", "")), str(form_data.get("suffix", ""))
        name = str(form_data.get("filename", "upload"))
        if not _TOKEN.match(token) or suffix not in SUFFIXES:
            raise web.HTTPBadRequest(text="无效的导入请求")
        stored = upload_dir / f"{token}{suffix}"
        if not stored.is_file():
            return page(request, error="上传的文件已处理或已过期，请重新上传")
        try:
            summary = await import_file(
                supervisor(), stored, mapping(), strict=bool(form_data.get("strict")), name=name
            )
        except DatabaseBusy:
            return page(request, error="数据库繁忙，导入已暂停：已保存的数据保留，请稍后重新上传导入")
        finally:
            await asyncio.to_thread(stored.unlink, True)
        return page(request, summary=summary, done=True, filename=name)

    app.router.add_get(prefix, form)
    app.router.add_post(prefix + "/preview", preview)
    app.router.add_post(prefix + "/confirm", confirm)


def _save(path: Path, data: bytes) -> None:
    """Keep an upload; uploads left unconfirmed for a day are removed on the way."""
    import time

    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.iterdir():
        if (
            old.is_file()
            and old.suffix in SUFFIXES
            and time.time() - old.stat().st_mtime > KEEP_UPLOAD_S
        ):
            old.unlink(missing_ok=True)
    path.write_bytes(data)
