"""Storage: SQLAlchemy models, engine, repositories, the unit of work and migrations."""
