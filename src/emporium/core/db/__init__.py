"""The database: declarative base and sealed columns, engines, the unit of work, the change
feed, keyset pagination, outage detection and migrations."""
