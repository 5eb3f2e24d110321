"""The gateway application as gunicorn serves it: `gateway.wsgi:app`."""

from gateway.app import create_app
from shared.plumbing import request_id

request_id.configure_logging("gateway")  # each line names the request it was written for
app = create_app()
