"""One-time invites that register a courier without approval."""

import secrets
from datetime import timedelta

from db.uow import UnitOfWork
from services import clock
from services.access import require_dispatcher
from services.errors import NotFound

INVITE_TTL = timedelta(days=7)


async def create_invite(uow: UnitOfWork, actor_id: int) -> str:
    """A fresh token, fit for a t.me deep link (letters, digits, - and _)."""
    await require_dispatcher(uow, actor_id)
    token = secrets.token_urlsafe(16)
    now = clock.utcnow()
    await uow.invites.add(token, actor_id, now, now + INVITE_TTL)
    await uow.commit()
    return token


async def check_invite(uow: UnitOfWork, token: str) -> None:
    """Raise unless the token can still register a courier."""
    invite = await uow.invites.get(token)
    if invite is None or invite.used_by is not None or invite.expires_at <= clock.utcnow():
        raise NotFound("invite_invalid")
