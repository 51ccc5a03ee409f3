"""One-time invites that register a courier without approval."""

import re
import secrets
from datetime import timedelta

from db.models import Invite
from db.uow import UnitOfWork
from services import clock
from services.access import require_dispatcher
from services.errors import ErrorCode, Forbidden, NotFound
from services.read_models import InviteView

INVITE_TTL = timedelta(days=7)
# How long the Telegram link of a courier created over HTTP stays valid.
LINK_TTL = timedelta(days=30)
# What token_urlsafe makes; anything else is no invite of ours and is not looked up.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def create_invite(uow: UnitOfWork, actor_id: int, *, private_chat: bool) -> InviteView:
    """A fresh invite to register, for one courier; only in a private chat, where nobody else
    sees the link (whoever opens it joins without approval)."""
    token = new_token()
    now = clock.utcnow()
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        if not private_chat:
            raise Forbidden(ErrorCode.INVITE_IN_GROUP)
        await uow.invites.add(token, actor_id, now, now + INVITE_TTL)
        await uow.commit()
    return InviteView(token=token, valid_days=INVITE_TTL.days)


def new_token() -> str:
    """A fresh token, fit for a t.me deep link (letters, digits, - and _)."""
    return secrets.token_urlsafe(16)


async def valid_invite(uow: UnitOfWork, token: str) -> Invite:
    """The unused, unexpired invite of this token; within the caller's transaction."""
    if not _TOKEN.fullmatch(token):
        raise NotFound(ErrorCode.INVITE_INVALID)
    invite = await uow.invites.get(token)
    if invite is None or invite.used_by is not None or invite.expires_at <= clock.utcnow():
        raise NotFound(ErrorCode.INVITE_INVALID)
    return invite
