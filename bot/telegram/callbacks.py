"""Callback data for every button (aiogram CallbackData factories; each packs under 64 bytes).

A button about a project carries the project's integer id, never its code: a code may be 40 Chinese
characters (120 bytes) and may hold characters aiogram uses to pack the data."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class ProjectAction(CallbackData, prefix="pj"):
    """A button about one project. `action`: card (show the card) | report (start the guided report) |
    nochange (this month: no change) | dossier (the timeline, first page, as a new message) |
    timeline (turn the timeline message to `page`) | file (the full dossier as a document)."""

    action: str
    project_id: int
    page: int = 0


class OldProjectButton(CallbackData, prefix="p"):
    """A project button of a message sent before buttons carried ids (`p:<action>:<code>:<page>`): it
    opens the project's card, whose buttons are current. (Its own prefix: a code of digits would
    otherwise read as another project's id.)"""

    action: str
    code: str
    page: int = 0


class CountyPick(CallbackData, prefix="c"):
    """A county chosen for `purpose`: list | report | invite (then `role` is the invitee's role)."""

    purpose: str
    county_id: int
    role: str = ""


class ListPage(CallbackData, prefix="l"):
    """A page of one county's list (一县一清单)."""

    county_id: int
    page: int = 0


class ReportStep(CallbackData, prefix="r"):
    """A button of the guided report. `step`: status | progress | ms (toggle a milestone) | msdone | skip |
    photos (done with photos) | save | confirm (save despite a warning) | cancel | ppage (a page of the
    project choice); `value` what was chosen ("keep" keeps the current status or progress)."""

    step: str
    value: str = ""


class QuickAction(CallbackData, prefix="qa"):
    """A button answering a one-message report. `action`: save | fix (save the offered reading) | cancel |
    pick (this project) | undo;
    `token` names the pending report kept in the dialog data; `project_id` the project it is about."""

    action: str
    token: str = ""
    project_id: int = 0


class InviteRole(CallbackData, prefix="i"):
    """The role of a new invite, chosen by an administrator in chat."""

    role: str


class LanguagePick(CallbackData, prefix="lang"):
    lang: str
