"""Run one service in the foreground: `python -m shared.commands.serve agencies`.

The one entry point of every service process, for `make run` and docker
compose alike: green threads first, then settings from the environment,
then nameko's runner, which stops cleanly on SIGTERM or Ctrl-C.
"""

from shared.plumbing.green import patch

patch()

import argparse
import logging
import sys
import warnings

from shared import config
from shared.commands.services import SERVICES, service_class
from shared.plumbing import metrics, request_id
from shared.plumbing.away import server_away
from shared.storage import sealing


class WithoutTraceback(logging.Filter):
    def filter(self, record):
        record.exc_info, record.exc_text = None, None
        return True


class ServerAwayWithoutTraceback(logging.Filter):
    """A worker that failed because its database or the broker is away is
    one line (what and why), not a traceback each time a timer fires."""

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and server_away(error):
            record.msg = f"{record.getMessage()} ({type(error).__name__}: a server is away)"
            record.args, record.exc_info, record.exc_text = (), None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(service, level=None):
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    request_id.configure_logging(service, level)  # each line names the request it serves, if any
    logging.getLogger("kombu").setLevel(logging.WARNING)
    # kombu says "Connection to broker lost" with a traceback on every try: the line is enough
    logging.getLogger("kombu.mixins").addFilter(WithoutTraceback())
    logging.getLogger("nameko").setLevel(logging.WARNING)
    # nameko logs an expected error (a refusal) with its arguments, which may
    # quote a returnee's submitted values: keep only unexpected ones.
    logging.getLogger("nameko.containers").setLevel(logging.ERROR)
    logging.getLogger("nameko.containers").addFilter(ServerAwayWithoutTraceback())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("service", choices=sorted(SERVICES))
    args = parser.parse_args()
    configure_logging(args.service)
    from nameko.cli.run import run

    settings = config.load()
    # The services that seal what they keep: no keys, no service.
    sealed_by = {"referrals": sealing.SETTING, "notifications": sealing.WEBHOOK_SETTING}
    if args.service in sealed_by:
        try:
            sealing.parse_keys(settings[sealed_by[args.service]], sealed_by[args.service])
        except sealing.KeysNotValid as error:
            sys.exit(f"The {args.service} service does not start: {error}")
    if args.service == "agencies" and settings["BOOTSTRAP_ADMIN_KEY"]:
        from services.agencies.directory import check_admin_key

        try:
            check_admin_key(settings["BOOTSTRAP_ADMIN_KEY"])
        except ValueError as error:
            sys.exit(f"The agencies service does not start: {error}")
    if args.service == "notifications":
        settings["max_workers"] = int(settings["NOTIFICATIONS_MAX_WORKERS"])
    port = settings[f"{args.service.upper()}_METRICS_PORT"] or settings["METRICS_PORT"]
    if port:
        try:
            metrics.serve(port)
        except OSError as error:  # the port taken (another network on this machine): serve without
            logging.getLogger(__name__).error("no metrics: port %s cannot be served (%s)", port, error)
    logging.getLogger("shared.commands.serve").info("the %s service starts", args.service)
    run([service_class(args.service)], settings)


if __name__ == "__main__":
    main()
