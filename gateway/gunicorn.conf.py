"""gunicorn settings for the gateway (`gunicorn -c gateway/gunicorn.conf.py`)."""
import os

bind = f"0.0.0.0:{os.environ.get('GATEWAY_PORT') or '8000'}"
wsgi_app = "gateway.wsgi:app"
worker_class = "gthread"
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("GATEWAY_THREADS", "8"))
graceful_timeout = 10
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
