from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine

POOL = {"pool_size": 20, "max_overflow": 0}


@pytest.fixture
async def wide_engine(db_url: str, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The project's engine with room for 20 sessions at once (after `engine` cleaned up)."""
    wide = create_engine(db_url, **POOL)
    yield wide
    await wide.dispose()
