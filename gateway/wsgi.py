"""The gateway application as gunicorn serves it: `gateway.wsgi:app`."""
import logging

from gateway.app import create_app

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
app = create_app()
