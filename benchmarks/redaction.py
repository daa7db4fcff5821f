"""Microbenchmark of the redactor on the failure path: `python benchmarks/redaction.py`.

Times `Redactor.redact` on typical error messages (what every failed call redacts once), new and
repeated, and
`Redactor.clean` on an over-long one; prints the median of repeated runs in microseconds.
Not a test: the machine is shared and noisy, so no figure here is asserted anywhere.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from otel_aitrack.redaction import Redactor

# A 404 as the openai SDK words it (about 300 characters), with no secret in it: the common case.
NOT_FOUND = (
    "Error code: 404 - {'error': {'message': 'The model `gpt-5-nano-x` does not exist or you do not "
    "have access to it.', 'type': 'invalid_request_error', 'param': None, 'code': 'model_not_found'}} "
    "(request id req_0123456789abcdef0123456789abcdef, while calling POST /v1/chat/completions)"
)
# The same size, with a key and a bearer token in it.
UNAUTHORIZED = (
    "Error code: 401 - {'error': {'message': 'Incorrect API key provided: sk-proj-TESTKEY1234567890"
    "abcdefSECRET. You can find your API key at https://platform.openai.com/account/api-keys.', "
    "'type': 'invalid_request_error', 'param': None, 'code': 'invalid_api_key'}} (Authorization: "
    "Bearer abc.def.ghi)"
)
UNICODE = "İstanbul: " + NOT_FOUND
LONG_PAIRS = "token=abcdefgh&" * 700_000  # ~10 MB


def median_us(action: Callable[[], object], repeat: int, number: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            action()
        runs.append((time.perf_counter() - started) / number)
    return statistics.median(runs) * 1e6


def main() -> None:
    redactor = Redactor()
    texts = (("404, no secret", NOT_FOUND), ("401, key + bearer", UNAUTHORIZED), ("unicode", UNICODE))
    for name, text in texts:
        repeated = median_us(lambda t=text: redactor.redact(t), 15, 2000)
        # A text never seen before (what a message with a request id in it is): a counter makes each new.
        fresh = iter(range(10**9))
        cold = median_us(lambda t=text, n=fresh: redactor.redact(f"{t} #{next(n)}"), 15, 2000)
        print(f"redact {name} ({len(text)} chars): new text {cold:.2f} us, repeated text {repeated:.2f} us")
    clean = redactor.clean
    print(
        f"clean 10 MB token=... pairs to 1024: "
        f"{median_us(lambda: clean(LONG_PAIRS, 1024), 3, 1) / 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
