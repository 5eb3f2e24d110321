"""A nameko timer whose interval comes from the service's settings."""

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    """Fires every `settings[config_key]` seconds (first at start), one
    worker at a time, like nameko's own `@timer`."""

    def __init__(self, config_key, **kwargs):
        self.config_key = config_key
        super().__init__(interval=None, eager=True, **kwargs)

    def setup(self):
        self.interval = float(self.container.config[self.config_key])


every = ConfiguredTimer.decorator
