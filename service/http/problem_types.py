"""Problem type URNs (RFC 9457 `type`), apart from Flask so the command line can use them too."""

PROBLEM_JSON = "application/problem+json"

# Problem types are URNs: stable identifiers that need no web server behind them.
TYPES = {
    400: "urn:labinterp:problem:malformed-request",
    404: "urn:labinterp:problem:not-found",
    412: "urn:labinterp:problem:prefetch-missing",
    413: "urn:labinterp:problem:body-too-large",
    415: "urn:labinterp:problem:unsupported-media-type",
    422: "urn:labinterp:problem:invalid-content",
    500: "urn:labinterp:problem:internal-error",
}
