"""Is the upstream reachable? Used by GET /upstream, never by the health check."""

import requests


def check_upstream(url, timeout=5.0):
    try:
        r = requests.head(url, timeout=timeout, allow_redirects=True)
        return {"url": url, "reachable": r.ok, "status": r.status_code}
    except requests.RequestException as e:
        return {"url": url, "reachable": False, "error": type(e).__name__}
