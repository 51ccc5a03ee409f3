"""The dispatch domain. Use cases take plain ids and a unit of work and return plain data."""
