"""aiogram routers, one per feature, joined here in ONE ordered list: the first router whose filters
match an update handles it, so commands come first, the open dialog next, free-form reports after
it, and the catch-alls last."""

from __future__ import annotations

from aiogram import Router

from handlers import channels, errors, fallback, guided_report, invite, listing, project, quick_report, start, web


def routers() -> list[Router]:
    return [
        errors.router.build(),
        start.router.build(),
        invite.router.build(),
        channels.router.build(),
        listing.router.build(),
        project.router.build(),
        web.router.build(),
        guided_report.router.build(),
        quick_report.router.build(),
        fallback.router.build(),  # catch-alls: last
    ]
