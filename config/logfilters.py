"""Logging filters named by ``LOGGING`` in the settings."""

from __future__ import annotations

import logging

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

# What Celery says at INFO about every periodic run: beat sending a due task, a worker
# receiving one, and its success. At DEBUG they are routine; a failure, a retry, a
# rejected or expired task keeps its own message and level.
ROUTINE_MESSAGES = frozenset({"Scheduler: Sending due task %s (%s)", LOG_RECEIVED, LOG_SUCCESS})


class RoutineAtDebug(logging.Filter):
    """Log Celery's routine INFO messages (:data:`ROUTINE_MESSAGES`) at DEBUG instead.

    Attached to the loggers that emit them; a demoted record goes on only when its
    logger is enabled for DEBUG (``celery worker -l debug``, ``LOG_LEVEL=DEBUG``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not (isinstance(record.msg, str) and record.msg in ROUTINE_MESSAGES):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
