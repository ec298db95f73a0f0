"""Schemathesis hooks for scripts/schemathesis.sh.

Idempotency keys: the server replays the first answer to a key (and refuses the key with another
body, 422 `idempotency_key_reused`), exactly as the document says. Hypothesis draws small
strings and draws them again, so two different generated writes would often share a key and the
second would be answered 422 -- a correct answer that the positive-data check would report. A real
client sends a fresh key per logical request; so does this hook: a generated `X-Request-Id` that is
valid by the document (1-255 visible ASCII) is replaced by a fresh valid one. Invalid keys
(negative cases) are left as generated, so their rejection is still checked.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[\x21-\x7E]{1,255}$")


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "x-request-id":
            value = headers[name]
            if isinstance(value, str) and VALID_KEY.match(value):
                headers[name] = "st-" + uuid.uuid4().hex
    case.headers = headers
