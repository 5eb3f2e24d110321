"""Project-wide code: settings, event names and payloads, errors that cross RPC."""

import warnings

# nameko 2.14 runs on eventlet by design (../shared/DESIGN.md): its notice
# that eventlet is deprecated says nothing an operator can act on.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
