"""Schemathesis hooks for the API fuzz test (tests/tests/api_fuzz.rs).

`POST /v1/channels/email/mime` takes a raw RFC 5322 message
(`message/rfc822`), a media type Schemathesis has no serializer for: the
generated strings go on the wire as text, UTF-8 encoded, as for
`text/plain`.
"""

import schemathesis

schemathesis.serializer.alias("message/rfc822", "text/plain")
