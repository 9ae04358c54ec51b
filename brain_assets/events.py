"""Named events that operators grep for, emitted through the standard logging module.

Each record carries ``event`` (the name) and ``fields`` (a dict) as attributes, so a JSON handler
can write them as one line; the message is the readable form.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("brain_assets")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    details = " ".join(f"{key}={value}" for key, value in fields.items())
    logger.log(
        level,
        f"{event} {details}".rstrip(),
        extra={"event": event, "fields": fields},
    )
