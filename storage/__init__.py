"""Storage: models, the async engine, the unit of work and migrations."""
