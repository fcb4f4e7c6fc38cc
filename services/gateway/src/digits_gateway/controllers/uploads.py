"""`/api/v1/uploads`: large files sent in chunks, resumable after a dropped connection.

The contract (tus-like; used by the `digits` CLI and the browser's upload forms). Every route
needs a signed-in user who may create jobs (session cookie + CSRF header, or a Bearer token), and
an upload is seen and written by its owner only: anyone else gets 404, as for an unknown id.

`POST /api/v1/uploads` JSON `{"filename": str, "size": int, "purpose": "dataset"|"pretrained",
"sha256": hex (optional)}` → 201 with the upload's status (below) and `Location`.
    400 names the bad field. 413 `{"error": {"message": <reason>, "type":
    "RequestEntityTooLarge"}}` when `size` would take the user past their quota
    (DIGITS_GATEWAY_UPLOAD_QUOTA_BYTES, summed over their uploads not yet used by a job) or
    the data disk under its free-space floor (DIGITS_GATEWAY_UPLOAD_MIN_FREE_BYTES; the
    reservation counts the spool file and its copy in the Object Store).

`PATCH /api/v1/uploads/{id}` with headers `Upload-Offset: <n>` and `Content-Type:
application/offset+octet-stream`, the body the next bytes (at most
DIGITS_GATEWAY_UPLOAD_CHUNK_BYTES, 16 MiB; this route alone may exceed the general body cap)
→ 200 with the status.
    409 `{"error": {...}, "offset": <current>}` (and the `Upload-Offset` header) when `<n>` is not
    the current offset, or the upload already has all its bytes: resume from `offset`.
    413 when the body is over the chunk limit, runs past the declared size, or the disk reached
    its floor. 415 for another Content-Type. 400 for a missing or malformed Upload-Offset.
    Bytes that arrived before a connection dropped are kept: ask for the offset and go on.
    The PATCH that brings the last byte moves the file into the Object Store before it answers
    (a few seconds a GB: give that request a generous read timeout); if the connection drops
    meanwhile, the move goes on and the status reads `"state": "complete"` once it is done.
    With `sha256` given at create, a mismatch answers 422 and discards the upload.

`GET /api/v1/uploads/{id}` → 200 with the status; `HEAD` → 200, the headers `Upload-Offset`
and `Upload-Length` only. `DELETE /api/v1/uploads/{id}` → 200 `{"id"}`: abandoned, its bytes
removed. An upload not used by a job expires DIGITS_GATEWAY_UPLOAD_EXPIRY_HOURS (24) after its
last write and is removed.

The status: `{"id", "filename", "size", "purpose", "offset", "state", "expires_at", "job_id"}`,
`state` one of `receiving` (send more), `storing` (all bytes in, moving to the Object Store),
`complete` (ready to be used), `used` (a job took it: `job_id`). Every answer carries the
`Upload-Offset` and `Upload-Length` headers.

Using a complete upload: `upload_id` in place of the multipart file. Datasets: the form or
`POST /api/v1/datasets` JSON with `"method": "upload", "upload_id": id` (purpose "dataset");
pretrained models: `POST /pretrained_models/upload_archive` with `upload_id` instead of
`archive` (purpose "pretrained"). An upload is used once: a second use is 409; an unknown,
another user's, incomplete or other-purpose upload is a 400 naming `upload_id`. A create the
service refuses leaves the upload complete, to be used again.
"""
