"""Shared helpers of the Python scenarios of tenantproxy's client matrix."""
import json
import os
import sys
from urllib.parse import urlparse

ENV = os.environ
TAG = ENV.get("TP_TAG", "")
TENANT = int(ENV.get("TP_TENANT", "0"))
OTHER_ID = int(ENV.get("TP_OTHER_ID", "0"))


def check(cond, step, detail=None):
    """Print "ok <step>", or fail the scenario with the detail."""
    if not cond:
        print(f"FAIL {step}: {json.dumps(detail, default=str)}", flush=True)
        sys.exit(1)
    print(f"ok {step}", flush=True)


def url_parts(url):
    """Splits a postgres:// URL into libpq keywords."""
    u = urlparse(url)
    return {
        "host": u.hostname,
        "port": u.port or 5432,
        "dbname": u.path.lstrip("/"),
        "user": u.username,
        "password": u.password,
    }
