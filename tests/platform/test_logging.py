"""Routine periodic work logs at debug; failures and retries keep their level."""

from __future__ import annotations

import logging

import pytest
from celery.app.trace import LOG_FAILURE, LOG_RECEIVED, LOG_RETRY, LOG_SUCCESS

from config.logfilters import RoutineAtDebug

BEAT_SENDING = "Scheduler: Sending due task %s (%s)"


def record(logger: str, level: int, msg: str, args=None) -> logging.LogRecord:
    return logging.getLogger(logger).makeRecord(logger, level, __file__, 1, msg, args, None)


@pytest.fixture
def at_level():
    """``at_level(logger, level)``: set a logger's level for one test."""
    saved = {}

    def set_level(name: str, level: int) -> None:
        logger = logging.getLogger(name)
        saved.setdefault(name, logger.level)
        logger.setLevel(level)

    yield set_level
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("logger", "msg", "args"),
    [
        ("celery.beat", BEAT_SENDING, ("monitor-counters", "analytics.tasks.monitor_counters_task")),
        ("celery.worker.strategy", LOG_RECEIVED, {"name": "t", "id": "1", "args": "()", "kwargs": "{}"}),
        ("celery.app.trace", LOG_SUCCESS, {"name": "t", "id": "1", "runtime": 0.01, "return_value": 3}),
    ],
)
def test_routine_messages_are_dropped_at_info_and_shown_at_debug(at_level, logger, msg, args):
    routine = RoutineAtDebug()

    at_level(logger, logging.INFO)
    at_info = record(logger, logging.INFO, msg, args)
    dropped = not routine.filter(at_info)
    at_level(logger, logging.DEBUG)
    at_debug = record(logger, logging.INFO, msg, args)
    kept = routine.filter(at_debug)

    assert dropped
    assert kept
    assert (at_debug.levelno, at_debug.levelname) == (logging.DEBUG, "DEBUG")


@pytest.mark.parametrize(
    ("level", "msg"),
    [(logging.ERROR, LOG_FAILURE), (logging.INFO, LOG_RETRY), (logging.INFO, "beat: Starting...")],
)
def test_failures_retries_and_other_messages_keep_their_level(at_level, level, msg):
    at_level("celery.app.trace", logging.INFO)
    kept = record("celery.app.trace", level, msg, {"name": "t", "id": "1", "exc": "boom", "description": "x"})

    assert RoutineAtDebug().filter(kept)
    assert kept.levelno == level


def test_the_filter_is_on_the_loggers_that_send_routine_messages():
    for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
        assert any(isinstance(f, RoutineAtDebug) for f in logging.getLogger(name).filters), name
