"""``python -m releaserisk.cli``."""

from releaserisk.cli import run

run()
