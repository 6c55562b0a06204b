"""The SQL adapters: the sensor projection in PostgreSQL (asyncpg) or SQLite (aiosqlite).

store = SqlSensorStore(create_engine("postgresql+asyncpg://user:pw@host/db"))
await asyncio.to_thread(migrate.upgrade, url)   # create or update the schema first
"""

from pipeline.adapters.sql.engine import async_url, create_engine
from pipeline.adapters.sql.sensor_store import SqlSensorStore

__all__ = [
    "SqlSensorStore",
    "async_url",
    "create_engine",
]
