"""Repositories: queries and statements for one aggregate each. They never commit."""
