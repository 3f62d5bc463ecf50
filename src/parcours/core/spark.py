"""The process's one local Spark session, shared by every engine that runs on Spark
(probabilistic matching, the analytics metrics): starting one takes ~5 s and two
sessions in one JVM would fight over it."""

from __future__ import annotations

import os
import tempfile
import threading
from typing import TYPE_CHECKING

from parcours.core.errors import InvalidInput

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_lock = threading.Lock()
_session: SparkSession | None = None


def spark_session() -> SparkSession:
    """The process's Spark session in local mode (started once), with Splink's
    similarity functions on its class path and times in UTC."""
    global _session
    with _lock:
        if _session is None:
            _session = _start()
        return _session


def _extra_jars() -> list[str]:
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:  # matching is not installed: the metrics still run
        return []
    return [similarity_jar_location()]


def _start() -> SparkSession:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InvalidInput(
            "The Spark engine needs PySpark: install Parcours with the spark extra "
            "(pip install 'parcours[spark]') and Java 17."
        ) from None
    work = tempfile.mkdtemp(prefix="parcours-spark-")
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("parcours")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", work)
        .config("spark.sql.warehouse.dir", os.path.join(work, "warehouse"))
    )
    jars = _extra_jars()
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
