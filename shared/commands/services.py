"""The network's services by name, each imported only when asked for."""

import importlib

SERVICES = {
    "agencies": "services.agencies.service:AgenciesService",
    "referrals": "services.referrals.service:ReferralsService",
    "notifications": "services.notifications.service:NotificationsService",
}


def service_class(name):
    module, _, cls = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), cls)
