"""Photos as evidence: Telegram's file id plus a copy under DATA_DIR/photos/<project code>/, so the
dossier keeps them when the file id no longer works. A failed download keeps the file id only: the
report is worth more than the copy."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message, PhotoSize

from bot.config import Settings
from bot.domain.project_code import file_safe
from bot.services.reports import PhotoInput
from bot.store.db_gate import away_from_database

log = logging.getLogger(__name__)


def largest(message: Message) -> PhotoSize | None:
    return message.photo[-1] if message.photo else None


def too_big(photo: PhotoSize, settings: Settings) -> bool:
    return photo.file_size is not None and photo.file_size > settings.max_photo_mb * 1024 * 1024


def photo_folder(code: str) -> Path:
    """Relative to DATA_DIR."""
    return Path("photos") / file_safe(code)


async def keep_photo(bot: Bot, photo: PhotoSize, settings: Settings, code: str, now: dt.datetime) -> PhotoInput:
    relative = photo_folder(code) / f"{now:%Y%m%d-%H%M%S}-{file_safe(photo.file_unique_id)}.jpg"
    target = settings.data_dir / relative
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        async with away_from_database():  # a download can take seconds: no connection or turn held meanwhile
            await bot.download(photo, destination=target)
    except (TelegramAPIError, OSError) as exc:
        log.warning("could not download photo %s for %s: %r", photo.file_unique_id, code, exc)
        return PhotoInput(file_id=photo.file_id, file_unique_id=photo.file_unique_id)
    return PhotoInput(file_id=photo.file_id, file_unique_id=photo.file_unique_id, path=relative.as_posix())


def forget_photos(settings: Settings, photos: list[dict[str, str]]) -> None:
    """Remove the copies of photos from a report that was cancelled before it was saved."""
    for photo in photos:
        if photo.get("path"):
            (settings.data_dir / photo["path"]).unlink(missing_ok=True)


def as_dict(photo: PhotoInput) -> dict[str, str]:
    return {"file_id": photo.file_id, "file_unique_id": photo.file_unique_id, "path": photo.path}


def from_dicts(photos: list[dict[str, str]]) -> tuple[PhotoInput, ...]:
    return tuple(PhotoInput(p["file_id"], p.get("file_unique_id", ""), p.get("path", "")) for p in photos)


def move_photos(settings: Settings, photos: tuple[PhotoInput, ...], code: str) -> tuple[PhotoInput, ...]:
    """Photos kept before anyone said which project they belong to, moved into that project's folder."""
    moved = []
    for photo in photos:
        if not photo.path:
            moved.append(photo)
            continue
        relative = photo_folder(code) / Path(photo.path).name
        source, target = settings.data_dir / photo.path, settings.data_dir / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
        except OSError as exc:
            log.warning("could not move photo %s to %s: %r", photo.path, relative, exc)
            moved.append(photo)
            continue
        moved.append(PhotoInput(photo.file_id, photo.file_unique_id, relative.as_posix()))
    return tuple(moved)
