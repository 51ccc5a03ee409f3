from datetime import date, datetime

from db.models import DailyReport
from db.repositories.base import Repository


class DailyReportRepository(Repository):
    async def claim(self, day: date, now: datetime) -> bool:
        """Mark the day's report as sent; False if it already was (by anyone)."""
        statement = (
            self._insert(DailyReport)
            .values(day=day, sent_at=now)
            .on_conflict_do_nothing(index_elements=[DailyReport.day])
            .returning(DailyReport.day)
        )
        return (await self.session.execute(statement)).scalar_one_or_none() is not None
