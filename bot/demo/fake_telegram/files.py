"""Files: what users and the bot upload, getFile and the download URL, and the folder of
recorded messages with its index page (the offline demo's record_dir)."""

from __future__ import annotations

import html
import time
import urllib.parse
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.demo.fake_telegram.api import _UNSAFE_NAME, SEND_METHODS, SentRecord, _bad, _Params, _StoredFile


class FilesMixin:
    """A part of FakeTelegram (server.py), which holds the state these methods use."""

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        stored = self._files_by_path.get(request.match_info["file_path"])
        if not self._check_token(request.match_info["token"]) or stored is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    def _get_file(self, p: _Params) -> dict[str, Any]:
        stored = self._files.get(p.get_str("file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.data) > 20 * 1024 * 1024:
            raise _bad("file is too big")
        return stored.file_dict()

    def _store_file(
        self, data: bytes, kind: str, *, file_name: str | None = None, mime_type: str | None = None
    ) -> _StoredFile:
        n = next(self._file_counter)
        ext = Path(file_name).suffix if file_name else ".jpg" if kind == "photo" else ""
        folder = "photos" if kind == "photo" else "documents"
        stored = _StoredFile(
            file_id=f"{'AgAC' if kind == 'photo' else 'BQAC'}fake{n:08d}",
            file_unique_id=f"AQADfake{n:08d}",
            file_path=f"{folder}/file_{n}{ext}",
            data=data,
            file_name=file_name,
            mime_type=mime_type or ("image/jpeg" if kind == "photo" else None),
            kind=kind,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _store_photo(self, data: bytes, file_name: str | None = None) -> _StoredFile:
        small = self._store_file(data, "photo")
        big = self._store_file(data, "photo", file_name=file_name)
        sizes = [
            {
                "file_id": small.file_id,
                "file_unique_id": small.file_unique_id,
                "width": 90,
                "height": 68,
                "file_size": len(data),
            },
            {
                "file_id": big.file_id,
                "file_unique_id": big.file_unique_id,
                "width": 800,
                "height": 600,
                "file_size": len(data),
            },
        ]
        small.sizes = big.sizes = sizes
        return big

    def _file_ref(self, ref: str, kind: str) -> _StoredFile:
        stored = self._files.get(ref)
        if stored is not None:
            if kind == "photo" and stored.sizes is None:
                raise _bad("type of file mismatch: can't use file of type Document as Photo")
            return stored
        if urllib.parse.urlsplit(ref).scheme in ("http", "https"):
            # Telegram would download the URL; offline we keep an empty placeholder.
            if kind == "photo":
                return self._store_photo(b"", file_name=None)
            return self._store_file(b"", kind, file_name=Path(urllib.parse.urlsplit(ref).path).name or "file")
        raise _bad("wrong file identifier/HTTP URL specified")

    def _write_record(self, rec: SentRecord) -> None:
        """Write one outgoing message to record_dir and refresh index.html (offline demo)."""
        assert self.record_dir is not None
        self.record_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{rec.seq:05d}_{rec.method}_{rec.chat_id}"
        links: list[str] = []
        if rec.html is not None or rec.text is not None:
            (self.record_dir / f"{stem}.html").write_text(rec.html or html.escape(rec.text or ""), encoding="utf-8")
            (self.record_dir / f"{stem}.txt").write_text(rec.text or "", encoding="utf-8")
            links.append(f"{stem}.html")
        if rec.file_bytes is not None and rec.method in SEND_METHODS:
            name = f"{rec.seq:05d}_{_UNSAFE_NAME.sub('_', Path(rec.file_name or 'photo.jpg').name)}"
            (self.record_dir / name).write_bytes(rec.file_bytes)
            links.append(name)
        buttons = ", ".join(
            b.get("text", "") for row in (rec.reply_markup or {}).get("inline_keyboard", []) for b in row
        )
        cells = [
            str(rec.seq),
            time.strftime("%H:%M:%S", time.localtime(rec.time)),
            html.escape(rec.method),
            html.escape(str(rec.chat_id)),
            f"<pre>{html.escape(rec.text or '')}</pre>",
            html.escape(buttons),
            " ".join(
                f'<a href="{html.escape(urllib.parse.quote(link), quote=True)}">{html.escape(link)}</a>'
                for link in links
            ),
        ]
        self._index_rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        page = (
            '<!doctype html>\n<meta charset="utf-8"><title>Qingshui outgoing messages</title>\n'
            "<table border=1 cellpadding=4>\n<tr><th>#</th><th>time</th><th>method</th><th>chat</th>"
            "<th>text</th><th>buttons</th><th>files</th></tr>\n" + "\n".join(self._index_rows) + "\n</table>\n"
        )
        (self.record_dir / "index.html").write_text(page, encoding="utf-8")


def _document_dict(stored: _StoredFile) -> dict[str, Any]:
    d: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
    }
    if stored.file_name:
        d["file_name"] = stored.file_name
    if stored.mime_type:
        d["mime_type"] = stored.mime_type
    return d
