from services.agencies.models import Base
from shared.storage.migrate import run_migrations

run_migrations(Base.metadata)
