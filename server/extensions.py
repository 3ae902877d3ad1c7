"""The Flask extensions, created at import time and bound to an app by :func:`server.app.create_app`."""

from __future__ import annotations

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from server.database import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
